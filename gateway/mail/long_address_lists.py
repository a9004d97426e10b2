"""An address field of a kept message too long to hand the standard library's parser whole, read one mailbox at a
time.

The parser's time grows with the square of some values' length (``". "`` or ``'"'`` repeated: 0.5–1.3 s for
8 KB), and a kept message's To or Cc may be as long as SMTP lets a message be. So a field longer than ``WHOLE``
is cut at its top-level commas and group marks (never inside a quoted string, a comment, an angle address or a
domain literal). Each piece of up to ``MAX_PIECE`` characters is parsed as a field of its own, until ``BUDGET``
characters have been (a short piece counted as ``PIECE_COST``); any other piece is read by its angle address
alone: what is before the ``<`` its name, what is inside its address.

Written here because no library cuts an address list without parsing it whole.
"""

from __future__ import annotations

import email.policy
import re
from collections.abc import Iterator
from email.headerregistry import AddressHeader

from mail_gateway.mail.addresses import header_addresses
from mail_gateway.mail.rfc5322 import decoded_words

WHOLE = 2000  # a field up to this length is parsed whole, as any other
# The fields the standard library's header registry parses as address lists (From, To, Cc, Resent-To...).
ADDRESS_FIELDS = frozenset(name for name, kind in email.policy.default.header_factory.registry.items()
                           if issubclass(kind, AddressHeader))
MAX_PIECE = 998  # one mailbox parsed by the standard library: 15 ms at worst
BUDGET = 20_000  # characters of one field parsed so (some 600 ordinary mailboxes); the rest by angle address
PIECE_COST = 20  # what a piece costs of the budget at least: each parse takes some 70 µs however short
_SPECIAL = re.compile(r'[\\",:;<>()\[\]]')
_ANGLE_ADDRESS = re.compile(r"<([^<>]*)>\s*$")
_SPACES = re.compile(r"\s+")
_ENCODED_WORDS = re.compile(r"(?:=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=\s*)+")


def pieces(value: str) -> Iterator[str]:
    """The field's mailboxes as written, groups' names and marks left out."""
    start, quoted, comments, angle, literal = 0, False, 0, False, False
    escaped_at = -1
    for found in _SPECIAL.finditer(value):
        at, mark = found.start(), found.group()
        if at == escaped_at:
            continue
        if mark == "\\":
            escaped_at = at + 1 if quoted or comments else -1
        elif quoted:
            quoted = mark != '"'
        elif comments:
            comments += {"(": 1, ")": -1}.get(mark, 0)
        elif mark == '"':
            quoted = True
        elif mark == "(":
            comments = 1
        elif angle or literal:
            angle, literal = angle and mark != ">", literal and mark != "]"
        elif mark in "<[":
            angle, literal = mark == "<", mark == "["
        elif mark in ",;:":
            if mark != ":":  # the text before a ':' names a group: no mailbox
                yield value[start:at]
            start = at + 1
    yield value[start:]


def read_long(value: str) -> list[tuple[str, str]]:
    """``(display name, addr-spec)`` of each mailbox of a field longer than ``WHOLE`` that can be read."""
    found: list[tuple[str, str]] = []
    budget = BUDGET
    for piece in pieces(value):
        piece = piece.strip()
        if not piece:
            continue
        cost = max(len(piece), PIECE_COST)
        parsed = None
        if len(piece) <= MAX_PIECE and cost <= budget:
            parsed, budget = header_addresses(piece), budget - cost
        found += parsed if parsed is not None else _by_angle_address(piece)
    return found


def _by_angle_address(piece: str) -> list[tuple[str, str]]:
    address = _ANGLE_ADDRESS.search(piece)
    if address is None:
        spec = piece if "@" in piece and not _SPACES.search(piece) else ""
        return [("", spec)] if spec and len(spec) <= MAX_PIECE else []
    name = _SPACES.sub(" ", piece[:address.start()].replace('\\"', "\x00").replace('"', "").replace("\x00", '"'))
    return [(_decoded(name.strip()), address.group(1).strip())]


def _decoded(name: str) -> str:
    """A name of RFC 2047 encoded-words (as the composer writes a long non-ASCII one) decoded; any other as it is.
    Matched whole first, in one pass: the standard library's decoder looks for each word's end from every "=?",
    so a name of unended words would take time quadratic in its length."""
    return decoded_words(name) if _ENCODED_WORDS.fullmatch(name) else name
