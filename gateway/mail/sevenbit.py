"""Make a message 7-bit: what an upstream without 8BITMIME (RFC 6152) may be sent.

The SMTP backend downgrades an 8-bit message — composed, from a library, raw or relayed — when the upstream
did not announce 8BITMIME, as Postfix does: each 8-bit body part is re-encoded, text as quoted-printable and
anything else as base64, and everything else is written back as it was read. What cannot be made 7-bit that
way — 8-bit header text, a message without MIME headers — raises ``ValueError`` saying why, and the backend
refuses the message rather than send it as it is.
"""

from __future__ import annotations

import base64
import binascii
import re
from email.errors import MessageError
from email.generator import BytesGenerator
from email.message import Message
from email.parser import BytesParser
from email.policy import Compat32

# A header value that compat32 folding leaves unchanged when it fits the line: printable ASCII words
# separated by single spaces.
_PLAIN_VALUE = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*")
_CHUNK = 1 << 20  # characters of a body rewritten at a time, so a large body is never copied whole


class WireGenerator(BytesGenerator):
    """The standard library's generator with two fast paths that write the same bytes: a header that fits its
    line unchanged, and a body's line endings rewritten in large slices rather than line by line."""

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


_LINE_ENDING = re.compile(rb"\r\n|\r|\n")
_IDENTITY = ("7bit", "8bit", "binary")


class _AsWritten(Compat32):
    """Header fields written back exactly as they were read (folding kept, line endings made CRLF), where
    ``compat32`` would re-fold them: a downgrade changes the bodies it must change and nothing else."""

    def fold_binary(self, name: str, value: str) -> bytes:  # type: ignore[override]
        text = f"{name}: {value}".encode("ascii", "surrogateescape")
        return _LINE_ENDING.sub(b"\r\n", text).rstrip(b"\r\n") + b"\r\n"


_AS_WRITTEN = _AsWritten(linesep="\r\n")


def _payload_bytes(part: Message, payload: str) -> bytes:
    try:  # what the parser read from bytes: non-ASCII octets kept as surrogate escapes
        return payload.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:  # a str a program set: its characters, in the part's charset
        return payload.encode(part.get_content_charset() or "utf-8", "replace")


def _reencode(part: Message, data: bytes) -> None:
    del part["Content-Transfer-Encoding"]
    if part.get_content_maintype() == "text":
        part.set_payload(binascii.b2a_qp(data, quotetabs=False, istext=True, header=False).decode("ascii"))
        part["Content-Transfer-Encoding"] = "quoted-printable"
    else:
        part.set_payload(base64.encodebytes(data).decode("ascii"))
        part["Content-Transfer-Encoding"] = "base64"


def make_seven_bit(tree: Message) -> None:
    """Re-encode, in place, every leaf part whose body holds 8-bit data; a container declared ``8bit`` or
    ``binary`` is then ``7bit``. Raises ``ValueError`` for a part that says it is encoded but is not."""
    for part in tree.walk():
        encoding = str(part.get("Content-Transfer-Encoding", "7bit")).strip().lower()
        payload = part._payload  # as read: get_payload() would replace 8-bit octets with U+FFFD
        if isinstance(payload, list):  # multipart, or message/rfc822: its parts are walked on their own
            if encoding in ("8bit", "binary"):
                part.replace_header("Content-Transfer-Encoding", "7bit")
            continue
        if not isinstance(payload, str) or payload.isascii():
            continue
        if encoding not in _IDENTITY:
            raise ValueError(f"a {part.get_content_type()} part is declared {encoding} but holds 8-bit octets")
        _reencode(part, _payload_bytes(part, payload))


def seven_bit_message(data: bytes) -> bytes:
    """``data`` with its 8-bit body parts re-encoded (see the module's docstring); ``ValueError`` when that
    cannot make it 7-bit."""
    try:
        tree = BytesParser(policy=_AS_WRITTEN).parsebytes(data)
        if "MIME-Version" not in tree and "Content-Type" not in tree:
            raise ValueError("it holds 8-bit data without MIME headers saying what it is, so it cannot be re-encoded")
        make_seven_bit(tree)
        converted = _written(tree)
    except (TypeError, AttributeError, LookupError, MessageError) as exc:  # what else the parser raises
        raise ValueError(f"its MIME header fields cannot be read (the parser raised {type(exc).__name__}), so its "
                         "parts cannot be re-encoded; one cause is a parameter given both whole and in numbered "
                         "pieces (boundary*=a; boundary*0=b): give each parameter once") from exc
    if not converted.isascii():
        raise ValueError("its header fields hold 8-bit text, which needs an upstream with SMTPUTF8 or 8BITMIME")
    return converted


def _written(tree: Message) -> bytes:
    chunks: list[bytes] = []

    class _Sink:
        write = chunks.append

    WireGenerator(_Sink(), mangle_from_=False, policy=_AS_WRITTEN).flatten(tree, linesep="\r\n")  # type: ignore[arg-type]
    return b"".join(chunks)
