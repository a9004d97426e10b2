"""Print each message as it would go on the wire, for development."""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, TextIO

from backends.base import EmailBackend
from backends.rendering import RenderedMessage
from backends.result import SendResult, all_accepted

if TYPE_CHECKING:
    from settings import GatewaySettings

SEPARATOR = "-" * 79


class ConsoleBackend(EmailBackend):
    name = "console"

    def __init__(self, settings: GatewaySettings, stream: TextIO | None = None) -> None:
        super().__init__(settings)
        self._stream = stream
        self._lock = threading.Lock()

    @property
    def stream(self) -> TextIO:
        # Looked up at write time, not at start-up, so a redirected sys.stdout (pytest's capsys) is honoured.
        if self._stream is not None:
            return self._stream
        return sys.stderr if self.settings.mail_console_stream == "stderr" else sys.stdout

    def deliver(self, message: RenderedMessage) -> SendResult:
        # Bodies are 8-bit UTF-8 or quoted-printable, never base64, so the text stays readable here.
        text = message.data.decode("utf-8", errors="replace").replace("\r\n", "\n")
        with self._lock:
            stream = self.stream
            stream.write(f"{text.rstrip()}\n{SEPARATOR}\n")
            stream.flush()
        return all_accepted(message.message_id, self.name, message.recipients)
