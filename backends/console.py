"""Print each message for development: a short readable summary, then the message as it goes on the wire.

``MAIL_CONSOLE_FORMAT=raw`` prints the wire format alone. Every summary line starts with ``SUMMARY_PREFIX`` and
the summary ends with the ``WIRE_FORMAT`` line, so nothing in it can be mistaken for the message's own headers,
and a program reading the stream can drop it (split on ``SEPARATOR``, then keep what follows ``WIRE_FORMAT``).
"""

from __future__ import annotations

import re
import sys
import threading
from typing import TYPE_CHECKING, TextIO

from mail_gateway.backends.base import EmailBackend
from mail_gateway.backends.memory import MemoryBackend
from mail_gateway.errors import TransientDeliveryError
from mail_gateway.mail.reader import MessageReader
from mail_gateway.mail.rendering import RenderedMessage
from mail_gateway.mail.result import SendResult, all_accepted

if TYPE_CHECKING:
    from mail_gateway.settings.local import ConsoleSettings

SEPARATOR = "-" * 79
SUMMARY_PREFIX = "| "
WIRE_FORMAT = "=" * 30 + " as sent on the wire " + "=" * 28
MAX_SUMMARY_TEXT_LINES = 40
# C0 and C1 control characters but tab, and the bidirectional overrides: in a terminal they move the cursor,
# clear the screen, retitle the window or reorder what is shown, so the sender's text must not carry them there.
_TERMINAL_CONTROLS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def escaped(text: str) -> str:
    """``text`` with every terminal control character shown as its escape (ESC as ``\\x1b``)."""
    return _TERMINAL_CONTROLS.sub(lambda m: ascii(m.group())[1:-1], text)


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"


def summary_lines(message: RenderedMessage) -> list[str]:
    """From, To, Cc, Bcc, Subject, attachments and the decoded text: what a developer looks for first."""
    reader = MessageReader(message.data, message.recipients)
    lines = [f"From:    {reader.from_}", f"To:      {', '.join(reader.to)}"]
    if reader.cc:
        lines.append(f"Cc:      {', '.join(reader.cc)}")
    if reader.bcc:
        lines.append(f"Bcc:     {', '.join(reader.bcc)}")
    lines.append(f"Subject: {reader.subject}")
    if reader.attachments:
        lines.append("Attachments:")
        lines += [f"  {a.filename or '(no name)'}  {a.content_type}  {human_size(a.size)}" for a in reader.attachments]
    lines.append("")
    text = reader.text
    if text is None:
        html = reader.html
        text = "(no text part)" if html is None else f"(no text part; the HTML part has {len(html)} characters)"
    body = text.replace("\r\n", "\n").rstrip("\n").split("\n")
    if len(body) > MAX_SUMMARY_TEXT_LINES:
        hidden = len(body) - MAX_SUMMARY_TEXT_LINES
        body = body[:MAX_SUMMARY_TEXT_LINES] + [f"... ({hidden} more lines below)"]
    return [escaped(line) for line in lines + body]


class ConsoleBackend(EmailBackend):
    name = "console"
    settings: ConsoleSettings

    def __init__(self, settings: ConsoleSettings, stream: TextIO | None = None) -> None:
        """``settings``: ``GatewaySettings.console``, where the format and keep hold GATEWAY_ENV's defaults resolved."""
        super().__init__(settings)
        self._stream = stream
        self._lock = threading.Lock()
        self.with_summary = settings.mail_console_format == "summary"
        # In development the console also keeps a bounded copy, so `make run` alone gives a working outbox
        # page (as a local Mailpit would): printed for the terminal, kept for the browser.
        self.kept: MemoryBackend | None = MemoryBackend(settings) if settings.mail_console_keep else None

    @property
    def stream(self) -> TextIO:
        # Looked up at write time, not at start-up, so a redirected sys.stdout (pytest's capsys) is honoured.
        if self._stream is not None:
            return self._stream
        return sys.stderr if self.settings.mail_console_stream == "stderr" else sys.stdout

    def deliver(self, message: RenderedMessage) -> SendResult:
        # Bodies are 8-bit UTF-8 or quoted-printable, never base64, so the text stays readable here.
        text = message.data.decode("utf-8", errors="replace").replace("\r\n", "\n")
        output = f"{text.rstrip()}\n{SEPARATOR}\n"
        if self.with_summary:
            summary = "".join(f"{SUMMARY_PREFIX}{line}".rstrip() + "\n" for line in summary_lines(message))
            output = f"{summary}{WIRE_FORMAT}\n{output}"
        try:
            with self._lock:
                stream = self.stream
                stream.write(output)
                stream.flush()
        except (OSError, ValueError) as exc:  # a closed pipe or stream: nothing was shown
            raise TransientDeliveryError(f"could not write to {self.settings.mail_console_stream}: {exc}",
                                         backend=self.name, message_id=message.message_id) from exc
        if self.kept is not None:
            self.kept.deliver(message)
        return all_accepted(message.message_id, self.name, message.recipients)
