"""The outbox's search language, Mailpit's: free words, ``field:value`` terms, quoted phrases and ``-`` to negate.

Each kept message's searchable fields are folded once, when its summary is made (``KeptIndex.index``), so a
search over many messages only compares strings. A term is folded the same way: case never matters, and a term
typed without accents also finds accented text (``cafe`` finds ``Café``) while one typed with them finds only
those (``café`` does not find ``cafe``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from mail_gateway.backends.search_index import KeptIndex, fold, fold_accents

# Where a free word is looked for (the subject, addresses and text, joined), and which index fields each
# ``field:`` names.
FREE_TEXT = ("words",)
FIELDS = {"from": ("from",), "to": ("to",), "cc": ("cc",), "subject": ("subject",), "message-id": ("message-id",),
          "tag": ("tag",), "addressed": ("to", "cc"), "body": ("text",)}
FLAGS = {"has": {"attachment", "attachments"}, "is": {"read", "unread", "tagged"}}
UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2, "g": 1024**3, "gb": 1024**3}
SYNTAX = ("write words, \"quoted phrases\", field:value terms (from:, to:, cc:, subject:, message-id:, tag:, "
          "has:attachment, is:read, is:unread, larger:10K, smaller:1M, before:2026-01-31, after:2026-01-01) and "
          "-term to exclude")
_TOKEN = re.compile(r'\s*(-?)(?:([A-Za-z-]+):)?(?:"([^"]*)"|(\S+))')
_SIZE = re.compile(r"([0-9]{1,12})\s*([A-Za-z]{0,2})")


class SearchSyntaxError(ValueError):
    """A query the language cannot read; its message says what and how to write it."""


@dataclass(frozen=True, slots=True)
class Term:
    test: Callable[[KeptIndex, bool], bool]  # (summary, read) -> matches
    negated: bool


def _contains(fields: tuple[str, ...], value: str) -> Callable[[KeptIndex, bool], bool]:
    plain, exact = fold_accents(value), fold(value)
    # Typed without accents: looked for in the text without them; typed with them: in the text as written.
    which, needle = (1, plain) if plain == exact else (0, exact)

    if len(fields) == 1:
        [field] = fields
        return lambda found, _read: needle in found.index[field][which]
    return lambda found, _read: any(needle in found.index[name][which] for name in fields)


def _size(name: str, value: str) -> Callable[[KeptIndex, bool], bool]:
    match = _SIZE.fullmatch(value)
    if match is None or match.group(2).lower() not in UNITS:
        raise SearchSyntaxError(f"{name}:{value} is not a size; write a number with K, M or G, e.g. {name}:10K")
    limit = int(match.group(1)) * UNITS[match.group(2).lower()]
    if name == "larger":
        return lambda found, _read: found.size > limit
    return lambda found, _read: found.size < limit


def _day(name: str, value: str) -> Callable[[KeptIndex, bool], bool]:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise SearchSyntaxError(f"{name}:{value} is not a date; write it as YYYY-MM-DD, e.g. {name}:2026-01-31") \
            from None
    if moment.tzinfo is None:  # a bare day, or a time without zone: UTC's
        moment = moment.replace(tzinfo=UTC)
    edge = moment.timestamp()  # before: earlier than this moment; after: this moment or later (Gmail's reading)
    if name == "before":
        return lambda found, _read: found.timestamp is not None and found.timestamp < edge
    return lambda found, _read: found.timestamp is not None and found.timestamp >= edge


def _flag(name: str, value: str) -> Callable[[KeptIndex, bool], bool]:
    wanted = value.lower()
    if wanted not in FLAGS[name]:
        choices = " or ".join(f"{name}:{choice}" for choice in sorted(FLAGS[name]))
        raise SearchSyntaxError(f"{name}:{value} is not a filter; write {choices}")
    if name == "has":
        return lambda found, _read: found.attachment_count > 0
    if wanted == "tagged":
        return lambda found, _read: bool(found.tags)
    return lambda _found, read: read == (wanted == "read")


def _term(field: str | None, value: str) -> Callable[[KeptIndex, bool], bool]:
    name = None if field is None else field.lower()
    if name in ("larger", "smaller"):
        return _size(name, value)
    if name in ("before", "after"):
        return _day(name, value)
    if name in FLAGS:
        return _flag(name, value)
    if name == "tag":  # a whole tag, as Mailpit matches them: tag:sign does not find the tag signup
        wanted = fold(value)
        return lambda found, _read: wanted in found.index.get("tag", ("", ""))[0].split("\n")
    return _contains(FIELDS[name] if name is not None else FREE_TEXT, value)


def _known(field: str) -> bool:
    return field.lower() in (*FIELDS, *FLAGS, "larger", "smaller", "before", "after")


def parse(query: str) -> list[Term]:
    """The terms of ``query``; ``SearchSyntaxError`` for a query the language cannot read."""
    if query.count('"') % 2:
        raise SearchSyntaxError('a quotation mark is not closed; close the phrase with " or remove it')
    terms, position = [], 0
    while position < len(query) and query[position:].strip():
        match = _TOKEN.match(query, position)
        if match is None:  # cannot happen once quotes pair up, but a query is never guessed at
            raise SearchSyntaxError(f"cannot read the query from {query[position:]!r}; {SYNTAX}")
        negated, field, phrase, word = match.groups()
        position = match.end()
        value = phrase if phrase is not None else word
        if field is None and word is not None and word.endswith(":") and _known(word[:-1]):
            raise SearchSyntaxError(f"{word} has no value; write {word}something, or quote a phrase")
        if field is not None and not _known(field):
            value, field = f"{field}:{value}", None  # a word with a colon (a URL, a time): searched as written
        if field is not None and not value:
            raise SearchSyntaxError(f"{field}: has no value; write {field}:something, or quote a phrase")
        if value and value != "-":  # a lone dash is no term
            terms.append(Term(_term(field, value), bool(negated)))
    return terms


def matches(terms: list[Term], found: KeptIndex, read: bool) -> bool:
    return all(term.test(found, read) != term.negated for term in terms)
