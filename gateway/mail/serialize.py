"""Serialise a MIME tree to wire bytes: the stdlib's ``BytesGenerator``, with two fast paths.

Rendering is the largest cost of a send (see benchmarks/RESULTS.md), and two parts of the stdlib's generator
dominate it: folding every header through ``email.header.Header`` even when it already fits on one line, and
splitting every body into a list of lines to rewrite line endings (for a 20 MB attachment, ~370,000 small
strings). Both fast paths produce exactly the bytes the stdlib would; anything else goes the stdlib's way.
"""

from __future__ import annotations

import base64
import copy as copy_module
import re
import uuid
from email.generator import BytesGenerator
from email.message import Message
from email.mime.base import MIMEBase
from typing import Any

# A header value that compat32 folding leaves unchanged when it fits the line: printable ASCII words
# separated by single spaces.
_PLAIN_VALUE = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*")
_CHUNK = 1 << 20  # characters of a body rewritten at a time, so a large body is never copied whole
_LARGE_BODY = 1 << 16  # characters; base64 bodies over this are spliced in after generation


class WireGenerator(BytesGenerator):
    def _write_headers(self, msg: Message) -> None:
        limit = self.policy.max_line_length or 0
        linesep = self._NL
        for name, value in msg.raw_items():
            if (isinstance(value, str) and name.isascii() and len(name) + 2 + len(value) <= limit
                    and _PLAIN_VALUE.fullmatch(value)):
                self._fp.write(f"{name}: {value}{linesep}".encode("ascii"))
            else:
                self._fp.write(self.policy.fold_binary(name, value))
        self.write(linesep)

    def _write_lines(self, lines: str) -> None:
        if not lines:
            return
        if "\r" in lines:
            super()._write_lines(lines)
            return
        for start in range(0, len(lines), _CHUNK):
            self.write(lines[start:start + _CHUNK].replace("\n", self._NL))


class _Chunks(list[bytes]):
    """A write-only file that keeps what is written: joined once at the end, the output is never copied
    by a growing buffer."""

    def write(self, data: bytes) -> None:
        self.append(data)


def wire_chunks(mime: Message) -> list[bytes]:
    """``mime`` as RFC 5322 bytes with CRLF line endings, in pieces to join.

    The stdlib generator renders every MIME part into a buffer of its own and copies it into its parent's
    (and joins all parts once more to pick a boundary), so a large attachment's base64 text would be copied
    at each level. Each large base64 body is therefore replaced by a short unique token while the tree is
    generated, and spliced back in afterwards, unchanged. Base64 lines cannot contain a boundary line's
    leading ``--``, so leaving them out of the boundary check cannot change which boundary is safe.
    """
    large: list[tuple[Message, str, bytes]] = []
    for part in mime.walk():
        payload = part._payload
        if (isinstance(payload, str) and len(payload) > _LARGE_BODY
                and str(part.get("Content-Transfer-Encoding", "")).lower() == "base64"):
            token = f"mail-gateway-body-{uuid.uuid4().hex}"
            large.append((part, payload, token.encode("ascii")))
            part._payload = token
    chunks = _Chunks()
    try:
        WireGenerator(chunks, mangle_from_=False).flatten(mime, unixfrom=False, linesep="\r\n")  # type: ignore[arg-type]
    finally:
        for part, payload, _ in large:
            part._payload = payload
    if not large:
        return chunks
    rest = b"".join(chunks)  # small: the large bodies are not in it
    spliced: list[bytes] = []
    for _, payload, token in large:
        before, found, rest = rest.partition(token)
        if not found:  # cannot happen: every token was written
            raise RuntimeError("a MIME body went missing while rendering")
        spliced.append(before)
        spliced.extend(payload[start:start + _CHUNK].replace("\n", "\r\n").encode("ascii")
                       for start in range(0, len(payload), _CHUNK))
    spliced.append(rest)
    return spliced


def base64_part(content: bytes, mimetype: str) -> MIMEBase:
    """A base64 MIME part, byte for byte what flask-mailman builds for a binary attachment.

    flask-mailman goes through ``Message.set_payload(bytes)``, which first turns the bytes into a
    surrogate-escaped str (four bytes of memory per byte of a binary file) only to encode them back; a
    20 MB attachment then peaks at over 160 MB. Encoding the bytes directly peaks near 3x their size.
    """
    maintype, subtype = mimetype.split("/", 1)
    part = MIMEBase(maintype, subtype)
    # In slices: encodebytes builds one small object per 76-character line before joining them.
    step = 57 * 16384  # whole lines of input
    part.set_payload("".join(base64.encodebytes(content[start:start + step]).decode("ascii")
                             for start in range(0, len(content), step)))
    part["Content-Transfer-Encoding"] = "base64"
    return part


def with_lean_attachments(message: Any) -> Any:
    """``message`` (a flask-mailman ``EmailMessage``), or a shallow copy whose binary attachments are prebuilt
    with ``base64_part``.

    Text and message/rfc822 attachments keep flask-mailman's handling; the caller's message is unchanged.
    """
    lean: list[Any] = []
    changed = False
    for attachment in message.attachments:
        if isinstance(attachment, tuple) and isinstance(attachment[1], bytes) and attachment[2]:
            filename, content, mimetype = attachment
            maintype = mimetype.split("/", 1)[0]
            if maintype != "text" and mimetype != "message/rfc822":
                part = base64_part(content, mimetype)
                if filename:
                    try:
                        filename.encode("ascii")
                    except UnicodeEncodeError:
                        filename = ("utf-8", "", filename)  # as flask-mailman does: RFC 2231
                    part.add_header("Content-Disposition", "attachment", filename=filename)
                lean.append(part)
                changed = True
                continue
        lean.append(attachment)
    if not changed:
        return message
    copy = copy_module.copy(message)
    copy.attachments = lean
    return copy
