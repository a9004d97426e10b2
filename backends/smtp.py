"""Deliver over SMTP with smtplib: plain, STARTTLS or implicit TLS, verified certificates, bounded waits."""

from __future__ import annotations

import smtplib
import threading
from typing import TYPE_CHECKING

from backends import smtp_session
from backends.base import EmailBackend
from backends.rendering import RenderedMessage
from backends.result import SendResult

if TYPE_CHECKING:
    from settings import GatewaySettings


class SmtpBackend(EmailBackend):
    name = "smtp"

    def __init__(self, settings: GatewaySettings) -> None:
        super().__init__(settings)
        self.upstream = f"{settings.smtp_host}:{settings.mail_port}"
        uses_tls = settings.mail_use_tls or settings.mail_use_ssl
        self._context = smtp_session.tls_context(settings) if uses_tls else None
        # One shared backend serves every request thread; each thread's open connection is its own.
        self._local = threading.local()

    @property
    def _connection(self) -> smtplib.SMTP | None:
        return getattr(self._local, "connection", None)

    def open(self) -> bool:
        if self._connection is not None:
            return False
        self._local.connection = smtp_session.connect(self.settings, self._context)
        return True

    def close(self) -> None:
        conn = self._connection
        self._local.connection = None
        if conn is not None:
            smtp_session.quit_quietly(conn)

    def deliver(self, message: RenderedMessage) -> SendResult:
        conn = self._connection
        if conn is None or not smtp_session.is_usable(conn):
            # The previous message in this batch broke the connection: start a fresh one.
            conn = self._local.connection = smtp_session.connect(self.settings, self._context)
        return smtp_session.send_transaction(conn, message, self.upstream)
