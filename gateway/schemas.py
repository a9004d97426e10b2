"""The JSON bodies of the send routes, validated by pydantic (the OpenAPI document is generated from these)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, WithJsonSchema

from backends.addresses import normalize_address
from gateway.attachments import Attachment, Base64
from gateway.problems import FieldError, InvalidRequest

_HEADER_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 field name: printable ASCII except ':'
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # every ASCII control character but tab
# Set by the gateway itself or by the fields above; a caller's "headers" may not override them.
RESERVED_HEADERS = frozenset(
    h.lower()
    for h in ("From", "To", "Cc", "Bcc", "Reply-To", "Date", "Subject", "Message-ID", "Content-Type",
              "MIME-Version", "Content-Transfer-Encoding", "X-Tags")
)
METADATA_PREFIX = "X-Metadata-"


def _valid_unicode(value: str) -> str:
    # JSON can carry lone surrogates ("\ud800"); no mail encoding can.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (it holds a lone surrogate)") from None
    return value


def _single_line(value: str) -> str:
    _valid_unicode(value)
    if "\r" in value or "\n" in value:
        raise ValueError("must not contain CR or LF (header injection)")
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _header_name(name: str) -> str:
    if not _HEADER_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a valid header name (printable ASCII, no spaces or ':')")
    if name.lower() in RESERVED_HEADERS:
        raise ValueError(f"header {name!r} is set by the gateway; use the message fields instead")
    if name.lower().startswith(METADATA_PREFIX.lower()):
        raise ValueError(f"header {name!r} is set by the gateway from \"metadata\"; use that field instead")
    return name


def _tag(value: str) -> str:
    _single_line(value)
    if "," in value:
        raise ValueError("must not contain ',' (tags travel comma-separated in X-Tags)")
    return value


Address = Annotated[str, AfterValidator(_valid_unicode), AfterValidator(normalize_address)]
# One address or a list of them, as the JSON schema says (the validator turns a single one into a list).
AddressList = Annotated[
    list[Address],
    BeforeValidator(_as_list),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
]
HeaderValue = Annotated[str, Field(max_length=998), AfterValidator(_single_line)]
HeaderName = Annotated[str, Field(min_length=1, max_length=76), AfterValidator(_header_name)]
Text = Annotated[str, AfterValidator(_valid_unicode)]
Tag = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_tag)]
MetadataKey = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class MessageRequest(BaseModel):
    """One message: addresses are ``a@x.org`` or ``Name <a@x.org>``, alone or in a list."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, title="Message")

    from_: Address | None = Field(None, alias="from")
    to: AddressList = Field(default_factory=list)
    cc: AddressList = Field(default_factory=list)
    bcc: AddressList = Field(default_factory=list)
    reply_to: AddressList = Field(default_factory=list)
    subject: HeaderValue = ""
    text: Text | None = None
    html: Text | None = None
    headers: dict[HeaderName, HeaderValue] = Field(default_factory=dict)
    attachments: list[Attachment] = Field(default_factory=list)
    tags: list[Tag] = Field(default_factory=list, max_length=50, description="sent as the X-Tags header")
    metadata: dict[MetadataKey, HeaderValue] = Field(
        default_factory=dict, max_length=50, description="each entry sent as an X-Metadata-<key> header"
    )

    @property
    def recipient_count(self) -> int:
        return len(self.to) + len(self.cc) + len(self.bcc)


class BatchRequest(BaseModel):
    """Several messages, validated and reported one by one."""

    model_config = ConfigDict(extra="forbid", title="Batch")

    messages: list[MessageRequest] = Field(min_length=1)


class RawMessageRequest(BaseModel):
    """A message the client built itself, sent unchanged apart from a Message-ID/Date added when missing."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="RawMessage")

    mail_from: Address = Field(description="the envelope sender (SMTP MAIL FROM)")
    rcpt_to: AddressList = Field(min_length=1, description="the envelope recipients (SMTP RCPT TO)")
    data: Base64 = Field(min_length=1, description="the RFC 5322 message, base64-encoded")


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


def validation_errors(exc: ValidationError) -> list[FieldError]:
    return [FieldError(field_path(e["loc"]), _message(e)) for e in exc.errors(include_url=False)]


def _too_many_recipients(count: int, max_recipients: int | None, field: str) -> list[FieldError]:
    if max_recipients is None or count <= max_recipients:
        return []
    return [FieldError(field, f"{count} recipients; at most {max_recipients} are allowed per message "
                              "(GATEWAY_MAX_RECIPIENTS): split the message")]


def parse_message_request(
    payload: Any, *, default_sender: str | None, max_recipients: int | None = None
) -> MessageRequest:
    """Validate a request body; raise ``InvalidRequest`` listing every problem with its field."""
    try:
        request = MessageRequest.model_validate(payload)
    except ValidationError as exc:
        raise InvalidRequest(validation_errors(exc)) from exc
    errors = []
    if request.from_ is None and default_sender is None:
        errors.append(FieldError("from", "required: set \"from\" or configure MAIL_DEFAULT_SENDER"))
    if not (request.to or request.cc or request.bcc):
        errors.append(FieldError("to", "at least one recipient is required in to, cc or bcc"))
    if request.text is None and request.html is None:
        errors.append(FieldError("text", "give text, html or both"))
    errors += _too_many_recipients(request.recipient_count, max_recipients, "to")
    if errors:
        raise InvalidRequest(errors)
    return request


def parse_raw_request(payload: Any, *, max_recipients: int) -> RawMessageRequest:
    try:
        request = RawMessageRequest.model_validate(payload)
    except ValidationError as exc:
        raise InvalidRequest(validation_errors(exc)) from exc
    errors = _too_many_recipients(len(request.rcpt_to), max_recipients, "rcpt_to")
    if errors:
        raise InvalidRequest(errors)
    return request
