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

from mail_gateway.mail.fields import METADATA_PREFIX
from mail_gateway.mail.rfc5322 import decoded_words

MOST = 50  # of tags, and of metadata entries: as the JSON API takes
TAG_CHARACTERS = 128
VALUE_CHARACTERS = 16_384
_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MARKS = (b"\nx-tags:", b"\n" + METADATA_PREFIX.lower().encode())
# The two kinds of field, each with its folded lines. Read by hand because the standard library's parser reads
# every field of the header to find these: five times as long with compat32, seventy with the default policy, which
# a message with tags would pay on its way into the queue.
_FIELD = re.compile(rb"^(X-Tags|" + re.escape(METADATA_PREFIX.encode()) + rb"[!-9;-~]*)[ \t]*:"
                    rb"([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)", re.IGNORECASE | re.MULTILINE)
_FOLD = re.compile(rb"\r?\n(?=[ \t])")


def split_tags(field: str) -> tuple[str, ...]:
    """The tags an ``X-Tags`` field's text names, in order: comma-separated, each without its outer spaces."""
    return tuple(tag for tag in (t.strip() for t in field.split(",")) if tag)


def tags_and_metadata(data: bytes) -> tuple[tuple[str, ...], dict[str, str]]:
    """The tags and metadata of the message ``data`` (RFC 5322 bytes); none when it names none. A metadata value
    comes without its outer white space, which a header field does not keep."""
    end = data.find(b"\r\n\r\n")
    head = data if end < 0 else data[:end + 2]
    if not any(mark in b"\n" + head.lower() for mark in _MARKS):
        return (), {}
    tags: list[str] = []
    metadata: dict[str, str] = {}
    for found in _FIELD.finditer(head):
        name, value = found.group(1).decode("ascii"), _text(found.group(2))
        if name.lower() == "x-tags":
            tags.extend(tag for tag in split_tags(value) if len(tag) <= TAG_CHARACTERS)
        elif _KEY.fullmatch(key := name[len(METADATA_PREFIX):]) and len(value) <= VALUE_CHARACTERS:
            if len(metadata) < MOST:
                metadata.setdefault(key, value)
    return tuple(dict.fromkeys(tags))[:MOST], metadata


def _text(value: bytes) -> str:
    """A field's text: unfolded, its RFC 2047 words decoded, and 8-bit bytes (an SMTPUTF8 message's) read as
    UTF-8."""
    unfolded = _FOLD.sub(b"", value).decode("utf-8", "replace").strip()
    return decoded_words(unfolded) if "=?" in unfolded else unfolded
