"""Attachments of a message request: their validation, and the MIME part each becomes."""

from __future__ import annotations

import binascii
import mimetypes
import re
from email.mime.base import MIMEBase
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from backends.serialize import base64_part

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")  # C0/C1 controls, and surrogates JSON can smuggle
DEFAULT_CONTENT_TYPE = "application/octet-stream"


def _plain_filename(name: str) -> str:
    if "/" in name or "\\" in name:
        raise ValueError("must be a file name without path separators ('/' or '\\')")
    if _CONTROL.search(name):
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


def _decodable_base64(value: str) -> str:
    try:
        decode_base64(value)
    except binascii.Error as exc:
        raise ValueError(f"is not valid base64 ({exc}); encode the file's bytes with standard base64") from exc
    return value


Filename = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_plain_filename)]
Base64 = Annotated[
    str, Field(json_schema_extra={"contentEncoding": "base64"}), AfterValidator(_decodable_base64)
]
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
    content: Base64 = Field(description="the file's bytes, base64-encoded")
    content_type: ContentType | None = Field(None, description="defaults to a guess from the file name")
    content_id: ContentId | None = Field(None, description="makes the attachment inline, referred to as cid:")

    @property
    def data(self) -> bytes:
        return decode_base64(self.content)

    @property
    def mimetype(self) -> str:
        return (self.content_type or mimetypes.guess_type(self.filename)[0] or DEFAULT_CONTENT_TYPE).lower()

    def mime_part(self) -> MIMEBase:
        """The part as it goes on the wire. Every type is base64-encoded, text included, so the bytes that
        arrive are exactly the bytes sent (flask-mailman would re-encode text and normalise its line ends)."""
        part = base64_part(self.data, self.mimetype)
        disposition = "inline" if self.content_id else "attachment"
        # add_header encodes a non-ASCII file name per RFC 2231.
        part.add_header("Content-Disposition", disposition, filename=self.filename)
        if self.content_id:
            part.add_header("Content-ID", f"<{self.content_id}>")
        return part
