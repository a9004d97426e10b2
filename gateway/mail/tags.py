"""A message's tags and metadata, read back from the headers they travel in (``X-Tags``, ``X-Metadata-<key>``), so
that the store can name them in the message's status and in every webhook of its events, as django-anymail's
``tags`` and ``metadata`` and Postmark's ``Tag`` and ``Metadata`` are: a receiver tells which order's receipt
bounced without keeping the gateway's ids.

Read from the message's bytes, every path's message the same way: the JSON API writes its ``tags`` and
``metadata`` fields as these headers, and a raw, library or SMTP message that carries them has them too. What
the JSON API would refuse (more than 50 of either, a tag with a comma, a key it does not take) is left out here:
the headers still travel as they are.
"""

from __future__ import annotations

import re
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import compat32

from mail_gateway.mail.fields import METADATA_PREFIX

MOST = 50  # of tags, and of metadata entries: as the JSON API takes
TAG_CHARACTERS = 128
VALUE_CHARACTERS = 16_384
_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MARKS = (b"\nx-tags:", b"\n" + METADATA_PREFIX.lower().encode())
# compat32 reads the fields as they are; the default policy parses every one of them, twenty times as long.
_PARSER = BytesHeaderParser(policy=compat32)


def split_tags(field: str) -> tuple[str, ...]:
    """The tags an ``X-Tags`` field's text names, in order: comma-separated, each without its outer spaces."""
    return tuple(tag for tag in (t.strip() for t in field.split(",")) if tag)


def tags_and_metadata(data: bytes) -> tuple[tuple[str, ...], dict[str, str]]:
    """The tags and metadata of the message ``data`` (RFC 5322 bytes); none when it names none."""
    end = data.find(b"\r\n\r\n")
    head = b"\n" + (data if end < 0 else data[:end + 2]).lower()
    if not any(mark in head for mark in _MARKS):
        return (), {}
    tags: list[str] = []
    metadata: dict[str, str] = {}
    # raw_items: the fields as read, where items() wraps one with 8-bit bytes in a Header that hides them.
    for name, value in _PARSER.parsebytes(data if end < 0 else data[:end + 4]).raw_items():
        lower = name.lower()
        if lower == "x-tags":
            tags.extend(tag for tag in split_tags(_text(value)) if len(tag) <= TAG_CHARACTERS)
        elif lower.startswith(METADATA_PREFIX.lower()) and _KEY.fullmatch(key := name[len(METADATA_PREFIX):]):
            text = _text(value)
            if len(text) <= VALUE_CHARACTERS and len(metadata) < MOST:
                metadata.setdefault(key, text)
    return tuple(dict.fromkeys(tags))[:MOST], metadata


def _text(value: str) -> str:
    """A field's text: its RFC 2047 words decoded, and 8-bit bytes (an SMTPUTF8 message's) read as UTF-8."""
    raw = value.encode("ascii", "surrogateescape").decode("utf-8", "replace")
    unfolded = re.sub(r"\r?\n[ \t]", " ", raw).strip()
    if "=?" not in unfolded:
        return unfolded
    try:
        return str(make_header(decode_header(unfolded)))
    except (ValueError, LookupError, UnicodeError):  # a word the standard library cannot decode: kept as sent
        return unfolded
