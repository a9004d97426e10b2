"""The field types of a message request: what each field accepts, and the fix when it does not.

Each type is a pydantic ``Annotated`` type, so one definition validates the field and describes it in the
OpenAPI document. Values come out ready to use: addresses parsed into ``Address``, base64 decoded to bytes.
"""

from __future__ import annotations

import binascii
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, JsonValue, PlainValidator, WithJsonSchema
from typing_extensions import TypeAliasType

from mail_gateway.mail.addresses import Address, parse_address
from mail_gateway.mail.media_types import content_type, media_type, without_charset
from mail_gateway.mail.rfc5322 import check_header_text

_HEADER_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 field name: printable ASCII except ':'
# Written by the gateway, each with the fix for a caller who gave it: at the top of a message a part's
# Content-Disposition or Content-ID describes the whole message ("attachment" makes it one file in mail clients),
# and a DKIM signature made before the gateway wrote the bytes (Message-ID, Date, boundaries) cannot verify.
_WRITTEN_BY_THE_GATEWAY = {
    "content-disposition": "it is written for each attachment; use an attachment's disposition",
    "content-id": "it is written for each inline attachment; use an attachment's content_id",
    "dkim-signature": "the gateway signs the bytes it writes; set GATEWAY_DKIM_KEYS instead",
}
# Set by the gateway itself or by the fields above; a caller's "headers" may not override them.
RESERVED_HEADERS = frozenset(
    [h.lower() for h in ("From", "To", "Cc", "Bcc", "Reply-To", "Date", "Subject", "Message-ID", "Content-Type",
                         "MIME-Version", "Content-Transfer-Encoding", "X-Tags")] + list(_WRITTEN_BY_THE_GATEWAY)
)
METADATA_PREFIX = "X-Metadata-"


def _valid_unicode(value: str) -> str:
    # JSON can carry lone surrogates ("\ud800"); no mail encoding can.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (it holds a lone surrogate)") from None
    return value


def _storable(value: str) -> str:
    # PostgreSQL can neither keep nor compare a NUL in text: refused here, naming the field, on every store.
    if "\x00" in value:
        raise ValueError("must not hold NUL (U+0000), which the store cannot keep; remove it")
    return value


def _single_line(value: str) -> str:
    # Every field that becomes (part of) a header: no control character, line break or line separator.
    return check_header_text(value)


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
        fix = _WRITTEN_BY_THE_GATEWAY.get(name.lower(), "use the message fields instead")
        raise ValueError(f"header {name!r} is set by the gateway; {fix}")
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
    check_header_text(name)  # it goes into Content-Disposition
    # Mail clients drop a file name's outer whitespace (Python's parser too), so it is dropped here already.
    name = name.strip()
    if not name or name.strip(".") == "":
        raise ValueError("must be a file name such as 'report.pdf'")
    return name


def _other_text(value: str) -> str:
    kind = media_type(value)
    if not kind.startswith("text/"):
        raise ValueError(f"{kind} is not text; send it as an attachment")
    if kind in ("text/plain", "text/html"):
        raise ValueError(f"{kind} is the {'text' if kind == 'text/plain' else 'html'} field; put it there")
    # The text is sent in the message's charset, which the composer names; a parameter such as text/calendar's
    # method (RFC 6047 requires it of an invitation) is written as given.
    return without_charset(value)


def decode_base64(value: str) -> bytes:
    """Standard base64, strictly (no stray characters or padding); line breaks, as ``base64`` wraps, are fine."""
    compact = "".join(value.split())
    if len(compact) % 4:  # strict_mode lets a surplus "=" through
        raise binascii.Error("the length is not a multiple of 4 (missing or surplus '=' padding)")
    if not compact.isascii():
        raise binascii.Error("Only base64 data is allowed")
    # From the text itself: encoding it to bytes first would copy a 40 MB raw message's base64 once more.
    return binascii.a2b_base64(compact, strict_mode=True)


def _base64_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a base64 string")
    try:
        return decode_base64(value)
    except binascii.Error as exc:
        raise ValueError(f"is not valid base64 ({exc}); encode the bytes with standard base64") from exc


# Types whose body is made of parts, or that RFC 2046 5.2 allows only as 7-bit text: an attachment's bytes go
# base64-encoded, which RFC 2045 6.4 forbids for them, and readers found no attachment, nor its bytes.
_NOT_A_FILE = ("multipart/", "message/partial", "message/external-body")


def _a_file_type(value: str) -> str:
    kind = media_type(value)
    if kind.startswith(_NOT_A_FILE):
        raise ValueError(f"{kind} cannot be an attachment's type, which the attachment's bytes are sent as; give "
                         "the file's own type, or application/octet-stream (message/rfc822 for a whole message)")
    return value


MailAddress = Annotated[
    Address, PlainValidator(_address), WithJsonSchema({"type": "string", "examples": ["Name <a@example.com>"]})
]


def _reverse_path(value: Any) -> str:
    # The null sender of a bounce, a DSN or an auto-reply (RFC 5321 4.5.5): sent as MAIL FROM:<>, and kept so.
    return "" if value in ("", "<>") else _address(value).envelope


# An envelope sender in its envelope form: an address, or "" (also given as "<>") for the null sender.
ReversePath = Annotated[str, PlainValidator(_reverse_path),
                        WithJsonSchema({"type": "string", "examples": ["app@example.com", ""]})]
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
# A value, not a line: the composer folds it into lines of at most 998 octets, so a long thread's References (a
# hundred Message-IDs) is sent as Flask-Mail sends it. Still bounded, far inside what MTAs take for one header
# (Postfix: 100 KB).
MAX_HEADER_VALUE = 16_384
HeaderValue = Annotated[str, Field(max_length=MAX_HEADER_VALUE), AfterValidator(_single_line)]
HeaderName = Annotated[str, Field(min_length=1, max_length=76), AfterValidator(_header_name)]
Text = Annotated[str, AfterValidator(_valid_unicode)]
# Text the store keeps as text, not as a message's bytes (a template's parts, a suppression's note and filter).
StoredText = Annotated[str, AfterValidator(_valid_unicode), AfterValidator(_storable)]
Tag = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_tag)]
MetadataKey = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Filename = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_plain_filename)]
# An attachment's type/subtype and its parameters, written back in one form (``mail_gateway.mail.media_types``).
ContentType = Annotated[
    str, Field(max_length=900, examples=["application/pdf", "text/csv; charset=utf-8"]), AfterValidator(content_type),
    AfterValidator(_a_file_type),
]
# A body other than text/plain and text/html, which have fields of their own.
AlternativeType = Annotated[
    str, Field(max_length=255, examples=["text/calendar; method=REQUEST"]), AfterValidator(content_type),
    AfterValidator(_other_text),
]
# The id between the angle brackets of a Content-ID; the HTML refers to it as "cid:<content_id>".
ContentId = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[!-;=?-~]+$")]


def _json_integer(value: Any) -> Any:
    # Pydantic's lax mode reads true as 1 and "5" as 5, which a JSON Schema integer is not; 5.0 is one, which
    # strict mode refuses.
    if isinstance(value, bool | str):
        raise ValueError("must be a whole number, not text, true or false")
    return value


# A JSON body's integer, as the OpenAPI document says one is: 5 or 5.0, never "5" or true. Bounds go before
# JSON_INTEGER (Annotated[int, Field(ge=1), JSON_INTEGER]): after it, pydantic writes them into the schema as "ge".
JSON_INTEGER = BeforeValidator(_json_integer)
JsonInteger = Annotated[int, JSON_INTEGER]
# A stored template's name: safe in a URL path and as a file name of GATEWAY_TEMPLATES_DIR (no dot: welcome.html
# is the template welcome's HTML part).
TemplateName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", examples=["welcome"])]
# What a template reads: names a template can write (letters, digits, _), each any JSON value.
TemplateVariables = TypeAliasType("TemplateVariables", dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")],
                                                            JsonValue])
