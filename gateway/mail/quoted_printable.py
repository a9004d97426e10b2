"""Quoted-printable (RFC 2045 6.7) for a text part, exactly as ``binascii.b2a_qp`` writes it for text with LF line
breaks: "=" written ``=3D``, a space or tab ending a line written ``=20`` or ``=09``, a line that is only "."
written ``=2E``, and lines cut with a soft line break ("=") at 76 characters, never inside an ``=XX``.

Written here because binascii's encoder looks at every byte in turn: about 40 µs for the 4 KB one-line HTML part
of a template, whose every attribute's "=" must be escaped. For printable ASCII, tabs and line breaks (most HTML
and text parts), bytes methods and one regular expression give the same output in a third of the time; any other
byte is left to binascii.
"""

from __future__ import annotations

import binascii
import re

_HANDLED = bytes(range(0x20, 0x7F)) + b"\t\n"
_LINE_END_SPACE = {ord(" "): b"=20", ord("\t"): b"=09"}
# At most 75 characters, not ending inside an "=XX" (a soft line break's "=" makes the line's 76th).
_CUT = re.compile(rb".{1,75}(?<!=)(?<!=.)", re.DOTALL)
_MAX_LINE = 76


def encode(data: bytes) -> bytes:
    """``data`` quoted-printable, with LF line breaks: ``binascii.b2a_qp(data, quotetabs=False, istext=True)``."""
    if data.translate(None, _HANDLED):
        return binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
    lines = data.replace(b"=", b"=3D").split(b"\n")
    last = len(lines) - 1
    for number, line in enumerate(lines):
        if line == b".":  # alone on a line, read by SMTP as the end of the message if not dot-stuffed
            lines[number] = b"=2E"
            continue
        if number == last and line[-1:] in (b" ", b"\t"):  # the data's last byte is escaped before lines are cut
            line = line[:-1] + _LINE_END_SPACE[line[-1]]
        if len(line) >= _MAX_LINE:
            line = _cut(line)
        if number != last and line[-1:] in (b" ", b"\t"):  # a line's last byte after lines are cut, as binascii
            line = line[:-1] + _LINE_END_SPACE[line[-1]]
        lines[number] = line
    return b"\n".join(lines)


def _cut(line: bytes) -> bytes:
    pieces = _CUT.findall(line)
    # binascii cuts before a byte at the 76th column unless it is the line's last, which it writes there.
    if len(pieces) > 1 and len(pieces[-1]) == 1 and len(pieces[-2]) == _MAX_LINE - 1:
        pieces[-2:] = [pieces[-2] + pieces[-1]]
    return b"=\n".join(pieces)
