"""``mail.outbox``: what the backend kept, as the message objects flask-mailman's tests assert on.

flask-mailman's locmem backend keeps the message objects themselves; the gateway keeps what was actually sent
(its bytes), so every way a message came in (the app's own code, the HTTP API, the SMTP ingress) shows up,
as it went out. ``SentEmail`` reads those bytes back under flask-mailman's attribute names, as the caller wrote
them: the line breaks of a body and its HTML are ``\n`` (the bytes have CRLF), and ``extra_headers`` leaves out
the Date and Message-ID every message is written with.
"""

from __future__ import annotations

import email
from collections.abc import Sequence
from email.message import Message
from typing import Any, overload

from mail_gateway.backends.kept import KeptMail, KeptMessage
from mail_gateway.backends.memory import MemoryBackend
from mail_gateway.mail.media_types import without_charset
from mail_gateway.mail.mime_tree import FoundAttachment, part_text
from mail_gateway.mail.reader import MessageReader

# Headers that have attributes of their own; the rest are ``extra_headers``.
_OWN_HEADERS = {"subject", "from", "to", "cc", "reply-to", "content-type", "content-transfer-encoding",
                "mime-version"}
# Written on every message (by the composer, and by flask-mailman's ``message()``), so never among
# ``extra_headers``, which in flask-mailman's locmem outbox held only the caller's: read them as ``message_id``
# and ``message()["Date"]``. Who set them cannot be told from the bytes kept.
_WRITTEN = {"date", "message-id"}


def as_written(text: str) -> str:
    """Text read back from the bytes sent, with the line breaks a Python caller writes: SMTP carries CRLF."""
    return text.replace("\r\n", "\n")


def _as_attached(attachment: FoundAttachment) -> str | bytes:
    if not attachment.content_type.startswith("text/"):
        return attachment.content
    try:
        return attachment.content.decode(attachment.charset or "utf-8")
    except (LookupError, UnicodeDecodeError):  # bytes that are no text in it, which flask-mailman kept as bytes
        return attachment.content


class SentEmail:
    """One sent message: ``subject``, ``body``, ``from_email``, ``to``, ``cc``, ``bcc``, ``reply_to``,
    ``extra_headers``, ``alternatives``, ``attachments`` (``(filename, content, mimetype)``), ``message_id``,
    ``recipients()`` (the envelope) and ``message()`` (the parsed ``email.message.Message``)."""

    def __init__(self, kept: KeptMessage) -> None:
        self.data = kept.data
        self.reader = MessageReader(kept.data, kept.recipients)
        self.envelope = kept.recipients

    @property
    def subject(self) -> str:
        return self.reader.subject

    @property
    def body(self) -> str:
        text = self.reader.text
        return as_written(text if text is not None else self.reader.html or "")

    @property
    def from_email(self) -> str | None:
        return self.reader.from_ or None  # a message without a From, as flask-mailman's from_email says it

    @property
    def to(self) -> list[str]:
        return self.reader.to

    @property
    def cc(self) -> list[str]:
        return self.reader.cc

    @property
    def bcc(self) -> list[str]:
        return self.reader.bcc

    @property
    def reply_to(self) -> list[str]:
        return self.reader.reply_to

    @property
    def message_id(self) -> str:
        return self.reader.message_id

    @property
    def extra_headers(self) -> dict[str, str]:
        return {name: value for name, value in self.reader.headers if name.lower() not in _OWN_HEADERS | _WRITTEN}

    @property
    def alternatives(self) -> list[tuple[str, str]]:
        """The HTML beside a text body (its line breaks ``\n``, as ``body``'s), then every other alternative
        (``text/calendar; method=REQUEST``), with its type as given: the charset, which the composer adds, left out."""
        html = self.reader.html
        found = [(as_written(html), "text/html")] if html is not None and self.reader.text is not None else []
        # Any other as sent: a calendar's lines end in CRLF, as RFC 5545 has them written.
        return found + [(part_text(part), without_charset(str(part["Content-Type"])))
                        for part in self.reader.alternatives]

    @property
    def attachments(self) -> list[tuple[str | None, str | bytes, str]]:
        """``(filename, content, mimetype)``; a text attachment's content is text, as flask-mailman's ``attach()``
        and ``attach_file()`` keep it, read in the charset it names (else UTF-8, as they read it)."""
        return [(a.filename, _as_attached(a), a.content_type) for a in self.reader.attachments if not a.alternative]

    def recipients(self) -> list[str]:
        return list(self.envelope) or [*self.to, *self.cc]

    def message(self) -> Message:
        """The message as parsed from the bytes sent (header values as written, like flask-mailman's)."""
        return email.message_from_bytes(self.data)

    def __repr__(self) -> str:
        return f"<SentEmail to={self.to!r} subject={self.subject!r}>"


class SentMail(Sequence[SentEmail]):
    """The kept messages, oldest first: ``len()``, indexing, slicing, iteration, ``append()``, ``del`` and
    ``clear()``, as on flask-mailman's list."""

    def __init__(self, kept: KeptMail) -> None:
        self._kept_mail = kept

    def _kept(self) -> list[KeptMessage]:
        if isinstance(self._kept_mail, MemoryBackend):
            return self._kept_mail.messages
        return self._kept_mail.list_kept()[::-1]

    def __len__(self) -> int:
        return len(self._kept())

    @overload
    def __getitem__(self, index: int) -> SentEmail: ...

    @overload
    def __getitem__(self, index: slice) -> list[SentEmail]: ...

    def __getitem__(self, index: Any) -> Any:
        found = self._kept()[index]
        return [SentEmail(kept) for kept in found] if isinstance(index, slice) else SentEmail(found)

    def clear(self) -> None:
        self._kept_mail.clear()

    def append(self, message: Any) -> None:
        """Keep ``message`` (a flask-mailman ``EmailMessage`` or a ``SentEmail``) as if it had been sent: tests
        written for flask-mailman's locmem outbox, a list, add to it."""
        if not isinstance(self._kept_mail, MemoryBackend):
            raise TypeError("mail.outbox.append keeps a message in the memory backend; set TESTING=True or "
                            "MAIL_BACKEND=memory")
        if isinstance(message, SentEmail):
            self._kept_mail.keep(message.data, tuple(message.envelope), None)
            return
        self._kept_mail.keep(message.message().as_bytes(), tuple(message.recipients()), message.from_email)

    def __delitem__(self, index: int | slice) -> None:
        found = self._kept()[index]
        for kept in found if isinstance(index, slice) else [found]:
            self._kept_mail.delete_kept(kept.id)

    def __repr__(self) -> str:
        return f"<SentMail {len(self)} message(s)>"
