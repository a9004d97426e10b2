"""The JSON body of ``POST /v1/messages``, validated by pydantic."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from backends.addresses import normalize_address
from gateway.problems import FieldError, InvalidRequest

_HEADER_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 field name: printable ASCII except ':'
# Set by the gateway itself or by the fields above; a caller's "headers" may not override them.
RESERVED_HEADERS = frozenset(
    h.lower()
    for h in ("From", "To", "Cc", "Bcc", "Reply-To", "Date", "Subject", "Message-ID", "Content-Type",
              "MIME-Version", "Content-Transfer-Encoding")
)


def _single_line(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError("must not contain CR or LF (header injection)")
    return value


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _header_name(name: str) -> str:
    if not _HEADER_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a valid header name (printable ASCII, no spaces or ':')")
    if name.lower() in RESERVED_HEADERS:
        raise ValueError(f"header {name!r} is set by the gateway; use the message fields instead")
    return name


Address = Annotated[str, AfterValidator(normalize_address)]
AddressList = Annotated[list[Address], BeforeValidator(_as_list)]
HeaderValue = Annotated[str, AfterValidator(_single_line)]
HeaderName = Annotated[str, AfterValidator(_header_name)]


class MessageRequest(BaseModel):
    """One message: addresses are ``a@x.org`` or ``Name <a@x.org>``, alone or in a list."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    from_: Address | None = Field(None, alias="from")
    to: AddressList = Field(default_factory=list)
    cc: AddressList = Field(default_factory=list)
    bcc: AddressList = Field(default_factory=list)
    reply_to: AddressList = Field(default_factory=list)
    subject: HeaderValue = ""
    text: str | None = None
    html: str | None = None
    headers: dict[HeaderName, HeaderValue] = Field(default_factory=dict)


def field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part == "[key]":
            continue
        else:
            path += f".{part}" if path else str(part)
    return path or "body"


def _message(error: dict[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field; remove it"
    return str(error["msg"]).removeprefix("Value error, ")


def parse_message_request(payload: Any, *, default_sender: str | None) -> MessageRequest:
    """Validate a request body; raise ``InvalidRequest`` listing every problem with its field."""
    try:
        request = MessageRequest.model_validate(payload)
    except ValidationError as exc:
        errors = [FieldError(field_path(e["loc"]), _message(e)) for e in exc.errors(include_url=False)]
        raise InvalidRequest(errors) from exc
    errors = []
    if request.from_ is None and default_sender is None:
        errors.append(FieldError("from", "required: set \"from\" or configure MAIL_DEFAULT_SENDER"))
    if not (request.to or request.cc or request.bcc):
        errors.append(FieldError("to", "at least one recipient is required in to, cc or bcc"))
    if request.text is None and request.html is None:
        errors.append(FieldError("text", "give text, html or both"))
    if errors:
        raise InvalidRequest(errors)
    return request
