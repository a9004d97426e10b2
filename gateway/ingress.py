"""The SMTP ingress's aiosmtpd handler: relay each received message through the configured backend.

The envelope (MAIL FROM, RCPT TO) and the message bytes go to the backend unchanged; the client's reply to
DATA waits for the backend's answer (see ``gateway/ingress_replies.py``). Backends block (smtplib, file
writes), so each delivery runs on a worker thread and the event loop keeps serving the other sessions.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor
from typing import Any

from backends.base import EmailBackend
from backends.errors import GatewayError
from backends.rendering import render_raw
from gateway.ingress_replies import Reply, reply_for_error, reply_for_result

log = logging.getLogger("gateway.ingress")

TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"


def describe_peer(peer: Any) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        host, port = peer[0], peer[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(peer)


class RelayHandler:
    def __init__(self, backend: EmailBackend, executor: Executor, *, max_recipients: int) -> None:
        self.backend = backend
        self.executor = executor
        self.max_recipients = max_recipients

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        # Refused here, where the client can still send to the others; after DATA it could not be undone.
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return TOO_MANY_RECIPIENTS
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        login = getattr(session.auth_data, "login", None)
        user = login.decode("utf-8", "replace") if isinstance(login, bytes) else None
        loop = asyncio.get_running_loop()
        # The client waits for our answer now; the backend bounds its own waits (MAIL_TIMEOUT per step), and
        # the command timeout firing mid-delivery would drop a message the upstream may be accepting.
        server.pause_timeout()
        try:
            reply = await loop.run_in_executor(
                self.executor, self.relay, envelope.mail_from, list(envelope.rcpt_tos),
                envelope.original_content, describe_peer(session.peer), user,
            )
        finally:
            server.resume_timeout()
        return reply.text

    async def handle_exception(self, error: Exception) -> str:
        # aiosmtpd would answer "500" with the exception's text: a 5xx makes the client bounce the message,
        # and the text is for the log, not for the client.
        if isinstance(error, RuntimeError) and "shutdown" in str(error):
            return "451 4.3.2 The gateway is shutting down, try again later"
        log.error("SMTP session error", exc_info=error)
        return "451 4.3.0 Local error, try again later"

    def relay(self, mail_from: str, rcpt_tos: list[str], data: bytes, peer: str, user: str | None) -> Reply:
        """Deliver one received message and log it; runs on a worker thread, so it finishes (and is logged)
        even when the client disconnects before hearing the reply."""
        message_id, accepted = "", 0
        try:
            rendered = render_raw(mail_from, rcpt_tos, data, add_missing=False)
            message_id = rendered.message_id
            result = self.backend.send_rendered([rendered])[0]
            accepted = len(result.accepted)
            reply = reply_for_result(result)
        except Exception as exc:
            if not isinstance(exc, GatewayError):
                log.exception("unexpected error relaying a message from %s", peer)
            reply = reply_for_error(exc)
        level = logging.INFO if reply.code == 250 else logging.WARNING
        log.log(level, "received via=smtp message_id=%s backend=%s peer=%s user=%s recipients=%d accepted=%d "
                "outcome=%s code=%d", message_id or "-", self.backend.name, peer, user or "-", len(rcpt_tos),
                accepted, reply.outcome, reply.code)
        if reply.code != 250 or reply.outcome == "partial":
            log.log(level, "reply to %s: %s", peer, " | ".join(reply.lines))
        return reply
