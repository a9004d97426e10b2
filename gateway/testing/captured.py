"""What the ``mail_outbox`` fixture hands a test: the messages sent, and assertions about them."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterator
from typing import overload

import pytest
from flask import Flask

from mail_gateway.assembly import build_sender
from mail_gateway.backends.memory import MemoryBackend
from mail_gateway.mail.addresses import header_addresses
from mail_gateway.mail.reader import MessageReader
from mail_gateway.outbox import links, search
from mail_gateway.runtime import RUNTIME_KEY, Runtime


class SentMessage(MessageReader):
    """One message as it was sent: ``subject``, ``from_``, ``to``, ``cc``, ``bcc``, ``text``, ``html``,
    ``attachments``, ``headers``, ``message_id``, ``recipients`` (the envelope) and ``data`` (the bytes)."""

    def describe(self) -> str:
        line = f"to={self.to!r} subject={self.subject!r} from={self.from_!r}"
        if self.cc:
            line += f" cc={self.cc!r}"
        if self.bcc:
            line += f" bcc={self.bcc!r}"
        return line

    def __repr__(self) -> str:
        return f"<SentMessage {self.describe()}>"

    @property
    def links(self) -> list[dict[str, str]]:
        """Every link: ``{"url", "text", "kind"}`` for each href and src of the HTML, then the text's web
        addresses (as the outbox API lists them)."""
        return links.links(self)

    @property
    def codes(self) -> list[str]:
        """The one-time codes written near a word such as code, OTP or verification (as the outbox API finds
        them)."""
        return links.codes(self)


def _specs(addresses: list[str]) -> set[str]:
    # The sender's own address parser: a display name with a comma is not two addresses.
    return {spec.lower() for address in addresses for _, spec in header_addresses(address) or []}


def _wanted(value: str | list[str] | None) -> set[str]:
    if value is None:
        return set()
    return _specs([value] if isinstance(value, str) else list(value))


class CapturedMail:
    """The messages sent during one test, oldest first: ``len()``, iteration and indexing work as on a list."""

    def __init__(self, backend: MemoryBackend, monkeypatch: pytest.MonkeyPatch) -> None:
        self.backend = backend
        self._monkeypatch = monkeypatch

    @property
    def messages(self) -> list[SentMessage]:
        return [SentMessage(kept.data, kept.recipients) for kept in self.backend.messages]

    def __len__(self) -> int:
        return len(self.backend.messages)

    def __iter__(self) -> Iterator[SentMessage]:
        return iter(self.messages)

    @overload
    def __getitem__(self, index: int) -> SentMessage: ...

    @overload
    def __getitem__(self, index: slice) -> list[SentMessage]: ...

    def __getitem__(self, index: int | slice) -> SentMessage | list[SentMessage]:
        return self.messages[index]

    def __repr__(self) -> str:
        return f"<CapturedMail {len(self)} message(s)>"

    def clear(self) -> None:
        self.backend.clear()

    def wait(self, query: str = "", timeout: float = 10.0) -> SentMessage:
        """The newest message matching ``query`` (the outbox's search language, e.g. ``to:ann@example.com
        subject:welcome``), waiting up to ``timeout`` seconds for one sent by another thread; woken by each
        message kept, never polling. A query the language cannot read raises ``ValueError``."""
        terms = search.parse(query)
        keeping, deadline = self.backend.keeping, time.monotonic() + timeout
        while True:
            sequence = keeping.sequence()
            for message_id in self.backend.kept_ids():
                found = self.backend.search_index(message_id)
                kept = self.backend.get_kept(message_id)
                if found is not None and kept is not None and search.matches(terms, found, keeping.is_read(found.id)):
                    return SentMessage(kept.data, kept.recipients)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no message matching {query!r} was sent within {timeout} s.\n{self._listing()}")
            keeping.changes_after(sequence, remaining)

    @staticmethod
    def links(message: SentMessage) -> list[dict[str, str]]:
        return message.links

    @staticmethod
    def codes(message: SentMessage) -> list[str]:
        return message.codes

    def capture(self, app: Flask) -> None:
        """Send ``app``'s mail to this outbox for the rest of the test. Every app's mail already comes here
        while the fixture is active, so this is only kept for tests that call it."""
        state = Runtime.of(app)
        sender, _ = build_sender(state.settings, self.backend, store=state.store, direct=True)
        # Flask-Mail's and flask-mailman's entry points look the state up on every send, so they follow.
        self._monkeypatch.setitem(app.extensions, RUNTIME_KEY, dataclasses.replace(state, sender=sender, alternates={}))

    def find(self, *, to: str | list[str] | None = None, cc: str | list[str] | None = None,
             bcc: str | list[str] | None = None, from_: str | None = None, subject: str | re.Pattern[str] | None = None,
             subject_contains: str | None = None, text_contains: str | None = None,
             html_contains: str | None = None) -> list[SentMessage]:
        """The sent messages that match every criterion given. Addresses match case-insensitively and a
        message may have more recipients than asked for; a ``subject`` string must equal the whole subject
        (case included), a compiled pattern is searched, and ``subject_contains`` is a part of it."""
        def matches(message: SentMessage) -> bool:
            if not _wanted(to) <= _specs(message.to) or not _wanted(cc) <= _specs(message.cc):
                return False
            if not _wanted(bcc) <= _specs(message.bcc):
                return False
            if from_ is not None and _wanted(from_) != _specs([message.from_]):
                return False
            if isinstance(subject, re.Pattern):
                if not subject.search(message.subject):
                    return False
            elif subject is not None and message.subject != subject:
                return False
            if subject_contains is not None and subject_contains not in message.subject:
                return False
            if text_contains is not None and text_contains not in (message.text or ""):
                return False
            return html_contains is None or html_contains in (message.html or "")

        return [message for message in self.messages if matches(message)]

    def assert_sent(self, *, count: int | None = None, **criteria: object) -> SentMessage:
        """Assert that a message matching ``criteria`` (see ``find``) was sent — exactly ``count`` of them when
        given — and return the last one (None for ``count=0``). The failure lists what was sent instead."""
        found = self.find(**criteria)  # type: ignore[arg-type]
        if (count is None and not found) or (count is not None and len(found) != count):
            wanted = ", ".join(f"{name}={value!r}" for name, value in criteria.items()) or "any message"
            expected = f"{count} message(s)" if count is not None else "a message"
            raise AssertionError(f"expected {expected} matching {wanted}; found {len(found)}.\n{self._listing()}")
        return found[-1] if found else None  # type: ignore[return-value]

    def assert_nothing_sent(self) -> None:
        if len(self):
            raise AssertionError(f"expected no mail to be sent.\n{self._listing()}")

    def _listing(self) -> str:
        messages = self.messages
        if not messages:
            return "No message was sent."
        lines = [f"{len(messages)} message(s) were sent:"]
        lines += [f"  {n}. {message.describe()}" for n, message in enumerate(messages, 1)]
        return "\n".join(lines)
