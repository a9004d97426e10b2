"""The SMTP ingress's aiosmtpd handler: relay each received message through the gateway's send path.

The envelope (MAIL FROM, RCPT TO) and the message bytes go to the backend unchanged; the client's reply to
DATA waits for the backend's answer (see ``replies``). Backends block (smtplib, file writes), so each
delivery runs on a worker thread and the event loop keeps serving the other sessions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import Executor
from typing import Any, Protocol

from mail_gateway.errors import GatewayError, InvalidMessageError
from mail_gateway.ingress.replies import Reply, reply_for_error, reply_for_result, unusable
from mail_gateway.mail.addresses import envelope_address
from mail_gateway.mail.nesting import TOO_DEEP, too_deep
from mail_gateway.sending import Sender
from mail_gateway.settings.senders import Client

log = logging.getLogger("mail_gateway.ingress")
SHUTTING_DOWN = "451 4.3.2 The gateway is shutting down, try again later"

TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
# RFC 6531 3.4: a non-ASCII address only in a transaction that said SMTPUTF8 at MAIL FROM.
UTF8_UNDECLARED = "553 5.6.7 A non-ASCII address needs SMTPUTF8 in MAIL FROM"
NOT_UTF8 = "553 5.1.3 The address is not valid UTF-8"
SENDER_NOT_ALLOWED = "550 5.7.1 This sender is not allowed for your login (GATEWAY_ALLOWED_SENDERS)"
AUTH_REQUIRED = "530 5.7.0 Authentication required"
MIXED_RECIPIENTS = "452 4.5.3 Send to the gateway's own addresses and to others in separate transactions"
BAD_RECIPIENT = "553 5.1.3 {reason}; this recipient is refused, the others stay in the message"
BAD_SENDER = "553 5.1.7 {reason}; the sender is refused (a bounce has the null sender <>)"
NULL_RECIPIENT = "553 5.1.3 <> is the null sender of bounces, not a recipient; give a recipient as local-part@domain"


def address_refusal(address: str, envelope: Any) -> str | None:
    """The reply refusing a non-ASCII address the transaction did not declare, or that is not UTF-8 (aiosmtpd
    keeps undecodable octets as surrogate escapes); None for a usable one."""
    if address.isascii():
        return None
    if not envelope.smtp_utf8:
        return UTF8_UNDECLARED
    try:
        address.encode("utf-8")
    except UnicodeEncodeError:
        return NOT_UTF8
    return None


def syntax_refusal(address: str, refused: str) -> str | None:
    """``refused`` naming the reason, for an address the send path refuses after DATA (``envelope_address``); None
    for one it takes. Asked at MAIL and RCPT: after DATA one bad recipient would sink the whole message."""
    try:
        envelope_address(address)
    except InvalidMessageError as exc:
        return refused.format(reason=exc)
    return None


def reverse_path(address: str | None) -> str:
    """The envelope sender as the send path and the sender policy spell it: the null one (``MAIL FROM:<>``) is
    "". aiosmtpd passes it as "<>" and must keep it so on the envelope, where "" means no MAIL FROM yet."""
    return address if address and address != "<>" else ""


def session_user(session: Any) -> str | None:
    login = getattr(session.auth_data, "login", None)
    return login.decode("utf-8", "replace") if isinstance(login, bytes) else None


def describe_peer(peer: Any) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        host, port = peer[0], peer[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(peer)


class LocalMailbox(Protocol):
    """Addresses the gateway receives mail for itself, as an MX, from anyone (``bounces``, ``inbound``)."""

    def rcpt_reply(self, address: str, authenticated: bool) -> str | None:
        """None for an address not of this mailbox; else the reply to RCPT (250 taken, or a refusal)."""

    def receive(self, rcpt_tos: Sequence[str], data: bytes, peer: str, mail_from: str) -> Reply: ...


class RelayHandler:
    def __init__(self, sender: Sender, executor: Executor, *, max_recipients: int,
                 local: Sequence[LocalMailbox] = (), auth_required: bool = False) -> None:
        self.sender = sender
        self.executor = executor
        self.max_recipients = max_recipients
        self.local = tuple(local)
        # With local mailboxes aiosmtpd cannot ask for AUTH before MAIL (remote servers send there without it):
        # relaying still needs it, asked for here per recipient.
        # Not named auth_*: aiosmtpd would offer any handler attribute so named as an AUTH mechanism.
        self.relay_needs_auth = auth_required
        self.stopping = False  # set by the server before it stops taking deliveries

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname  # aiosmtpd leaves this to a handler with this hook
        # Without GATEWAY_SMTP_USERS aiosmtpd still offers AUTH after STARTTLS, with no mechanism in it.
        kept = [line for line in responses if line.rstrip() != "250-AUTH"]
        return [*kept[:-1], "250-ENHANCEDSTATUSCODES", kept[-1]]  # every reply has one (IngressSMTP.push)

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,
                          mail_options: list[str]) -> str:
        refusal = address_refusal(address, envelope) or syntax_refusal(address, BAD_SENDER)
        if refusal is not None:
            return refusal
        # The envelope sender is checked as early as it is known; the From field is checked after DATA. An
        # anonymous session may be a remote server writing to a local mailbox: its sender is checked at RCPT.
        if not (self.local and not session.authenticated) and not self._may_send_as(session, address):
            return SENDER_NOT_ALLOWED
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address in ("", "<>"):
            return NULL_RECIPIENT
        refusal = address_refusal(address, envelope) or syntax_refusal(address, BAD_RECIPIENT)
        if refusal is not None:
            return refusal
        # Refused here, where the client can still send to the others; after DATA it could not be undone.
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return TOO_MANY_RECIPIENTS
        refusal = self._rcpt_refusal(session, envelope, address)
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    def _may_send_as(self, session: Any, address: str) -> bool:
        return not reverse_path(address) or self.sender.may_send_as(Client(smtp_user=session_user(session)), address)

    def _rcpt_refusal(self, session: Any, envelope: Any, address: str) -> str | None:
        """The reply refusing ``address`` in this transaction, or None; remembers a local mailbox's recipients
        on the envelope (``local``), whose message is received rather than relayed."""
        local = getattr(envelope, "local", None)
        for mailbox in self.local:
            reply = mailbox.rcpt_reply(address, bool(session.authenticated))
            if reply is None:
                continue
            if not reply.startswith("2"):
                return reply
            if envelope.rcpt_tos and local is not mailbox:
                return MIXED_RECIPIENTS
            envelope.local = mailbox
            return None
        if local is not None:
            return MIXED_RECIPIENTS
        if self.relay_needs_auth and not session.authenticated:
            return AUTH_REQUIRED
        if self.local and not session.authenticated and not self._may_send_as(session, envelope.mail_from):
            return SENDER_NOT_ALLOWED
        return None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        user = session_user(session)
        loop = asyncio.get_running_loop()
        # The client waits for our answer now; the backend bounds its own waits (MAIL_TIMEOUT per step), and
        # the command timeout firing mid-delivery would drop a message the upstream may be accepting.
        if self.stopping:
            return SHUTTING_DOWN
        local = getattr(envelope, "local", None)
        server.pause_timeout()
        try:
            if local is not None:
                reply = await loop.run_in_executor(self.executor, self.receive, local, list(envelope.rcpt_tos),
                                                   envelope.original_content, describe_peer(session.peer),
                                                   reverse_path(envelope.mail_from))
            else:
                reply = await loop.run_in_executor(
                    self.executor, self.relay, reverse_path(envelope.mail_from), list(envelope.rcpt_tos),
                    envelope.original_content, describe_peer(session.peer), user,
                )
        except RuntimeError:
            if not self.stopping:  # the executor refuses work only once the server shuts it down
                raise
            return SHUTTING_DOWN
        finally:
            server.resume_timeout()
        return reply.text

    async def handle_exception(self, error: Exception) -> str:
        # aiosmtpd would answer "500" with the exception's text: a 5xx makes the client bounce the message,
        # and the text is for the log, not for the client.
        log.error("SMTP session error", exc_info=error)
        return "451 4.3.0 Local error, try again later"

    def receive(self, mailbox: LocalMailbox, rcpt_tos: list[str], data: bytes, peer: str, mail_from: str) -> Reply:
        """Hand mail for the gateway's own addresses to their mailbox, which reads it; relayed mail is checked on
        the send path (``render_raw``)."""
        if too_deep(data):
            log.warning("refused a message from %s before reading it: %s", peer, TOO_DEEP)
            return unusable(TOO_DEEP, "received")
        return mailbox.receive(rcpt_tos, data, peer, mail_from)

    def relay(self, mail_from: str, rcpt_tos: list[str], data: bytes, peer: str, user: str | None) -> Reply:
        """Deliver one received message through the send path (which logs it); runs on a worker thread, so it
        finishes even when the client disconnects before hearing the reply."""
        try:
            result = self.sender.send_raw(mail_from, rcpt_tos, data, via="smtp", add_missing=False,
                                          client=Client(smtp_user=user), peer=peer, user=user)
            return reply_for_result(result)
        except Exception as exc:
            if isinstance(exc, InvalidMessageError):
                log.warning("refused a message from %s before delivery: %s", peer, exc)
            elif not isinstance(exc, GatewayError):
                log.exception("unexpected error relaying a message from %s", peer)
            return reply_for_error(exc)
