"""A request to send a message, as a client describes it (to, subject, text, attachments...), validated once.

Every way in that composes a message — the HTTP routes, ``mail-gateway send`` — validates its input here and
gets a ``MessageRequest``: addresses parsed into ``Address`` values, attachments decoded to bytes, every field
checked.
Nothing after this point parses or decodes them again. The pydantic models are also what the OpenAPI
document describes, so the document cannot drift from what is accepted.
"""

from __future__ import annotations

import binascii
import mimetypes
import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    WithJsonSchema,
)

from mail_gateway.errors import FieldError, InvalidMessageError
from mail_gateway.mail.addresses import Address, parse_address

_HEADER_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 field name: printable ASCII except ':'
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # every ASCII control character but tab
_FILENAME_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")  # C0/C1 controls, and lone surrogates
# Set by the gateway itself or by the fields above; a caller's "headers" may not override them.
RESERVED_HEADERS = frozenset(
    h.lower()
    for h in ("From", "To", "Cc", "Bcc", "Reply-To", "Date", "Subject", "Message-ID", "Content-Type",
              "MIME-Version", "Content-Transfer-Encoding", "X-Tags")
)
METADATA_PREFIX = "X-Metadata-"
DEFAULT_CONTENT_TYPE = "application/octet-stream"


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


def _address(value: Any) -> Address:
    if isinstance(value, Address):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a string such as 'a@example.com' or 'Name <a@example.com>'")
    return parse_address(_valid_unicode(value))


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


def _plain_filename(name: str) -> str:
    if "/" in name or "\\" in name:
        raise ValueError("must be a file name without path separators ('/' or '\\')")
    if _FILENAME_CONTROL.search(name):
        raise ValueError("must not contain control characters or lone surrogates")
    # Mail clients drop a file name's outer whitespace (Python's parser too), so it is dropped here already.
    name = name.strip()
    if not name or name.strip(".") == "":
        raise ValueError("must be a file name such as 'report.pdf'")
    return name


def decode_base64(value: str) -> bytes:
    """Standard base64, strictly (no stray characters or padding); line breaks, as ``base64`` wraps, are fine."""
    compact = "".join(value.split())
    if len(compact) % 4:  # strict_mode lets a surplus "=" through
        raise binascii.Error("the length is not a multiple of 4 (missing or surplus '=' padding)")
    return binascii.a2b_base64(compact.encode("ascii", "replace"), strict_mode=True)


def _base64_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a base64 string")
    try:
        return decode_base64(value)
    except binascii.Error as exc:
        raise ValueError(f"is not valid base64 ({exc}); encode the bytes with standard base64") from exc


MailAddress = Annotated[
    Address, PlainValidator(_address), WithJsonSchema({"type": "string", "examples": ["Name <a@example.com>"]})
]
# One address or a list of them, as the JSON schema says (the validator turns a single one into a list).
AddressList = Annotated[
    list[MailAddress],
    BeforeValidator(_as_list),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
]
# Decoded once, when validated: the value is the bytes, the JSON is base64 text.
Base64Bytes = Annotated[
    bytes, PlainValidator(_base64_bytes), WithJsonSchema({"type": "string", "contentEncoding": "base64"})
]
HeaderValue = Annotated[str, Field(max_length=998), AfterValidator(_single_line)]
HeaderName = Annotated[str, Field(min_length=1, max_length=76), AfterValidator(_header_name)]
Text = Annotated[str, AfterValidator(_valid_unicode)]
Tag = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_tag)]
MetadataKey = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Filename = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_plain_filename)]
# RFC 2045 token characters, so the value can go into a Content-Type header unquoted.
ContentType = Annotated[
    str, Field(max_length=255, pattern=r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$")
]
# The id between the angle brackets of a Content-ID; the HTML refers to it as "cid:<content_id>".
ContentId = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[!-;=?-~]+$")]


class Attachment(BaseModel):
    """A file to attach; with ``content_id`` it is inline (an image the HTML shows as ``cid:...``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    filename: Filename
    content: Base64Bytes = Field(description="the file's bytes, base64-encoded")
    content_type: ContentType | None = Field(None, description="defaults to a guess from the file name")
    content_id: ContentId | None = Field(None, description="makes the attachment inline, referred to as cid:")

    @property
    def mimetype(self) -> str:
        return (self.content_type or mimetypes.guess_type(self.filename)[0] or DEFAULT_CONTENT_TYPE).lower()


class MessageRequest(BaseModel):
    """One message: addresses are ``a@x.org`` or ``Name <a@x.org>``, alone or in a list."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, title="Message")

    from_: MailAddress | None = Field(None, alias="from")
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
    def recipients(self) -> list[Address]:
        """Every envelope recipient (to, cc, bcc), each once, in order."""
        seen: dict[str, Address] = {}
        for address in (*self.to, *self.cc, *self.bcc):
            seen.setdefault(address.envelope, address)  # local parts are case-sensitive; domains arrive lowercased
        return list(seen.values())

    def extra_headers(self) -> dict[str, str]:
        """The caller's headers, then X-Tags and the X-Metadata-* headers."""
        headers = dict(self.headers)
        if self.tags:
            headers["X-Tags"] = ", ".join(self.tags)
        for key, value in self.metadata.items():
            headers[METADATA_PREFIX + key] = value
        return headers


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


def too_many_recipients(count: int, max_recipients: int | None, field: str) -> list[FieldError]:
    if max_recipients is None or count <= max_recipients:
        return []
    return [FieldError(field, f"{count} recipients; at most {max_recipients} are allowed per message "
                              "(GATEWAY_MAX_RECIPIENTS): split the message")]


def parse_message_request(payload: Any, *, default_sender: Address | None,
                          max_recipients: int | None = None) -> MessageRequest:
    """Validate a message; raise ``InvalidMessageError`` listing every problem with its field."""
    try:
        request = MessageRequest.model_validate(payload)
    except ValidationError as exc:
        raise InvalidMessageError(errors=validation_errors(exc)) from exc
    errors = []
    if request.from_ is None:
        if default_sender is None:
            errors.append(FieldError("from", "required: set \"from\" or configure MAIL_DEFAULT_SENDER"))
        else:
            request = request.model_copy(update={"from_": default_sender})
    if not (request.to or request.cc or request.bcc):
        errors.append(FieldError("to", "at least one recipient is required in to, cc or bcc"))
    if request.text is None and request.html is None:
        errors.append(FieldError("text", "give text, html or both"))
    errors += too_many_recipients(len(request.to) + len(request.cc) + len(request.bcc), max_recipients, "to")
    if errors:
        raise InvalidMessageError(errors=errors)
    return request
