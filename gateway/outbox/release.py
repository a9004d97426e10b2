"""``…/<id>/release``: send a kept message to a real SMTP server, to see it in a real mail client.

Only the envelope is chosen (the recipient, and the server: the one typed, or GATEWAY_OUTBOX_RELEASE_URL's);
the message's bytes go as they were kept, headers untouched. The connection is the SMTP backend's own
(``connect``: its timeout, STARTTLS with its TLS settings, its errors), so a failure is answered as a send's would
be. In production only the configured relay may be used: a typed host would let an API key probe any server.
"""

from __future__ import annotations

import smtplib
from typing import Any

from pydantic import ValidationError

from mail_gateway.backends.smtp.connect import connect
from mail_gateway.backends.smtp.tls import client_tls_context
from mail_gateway.backends.smtp.transaction import delivery_error, error_for_code, quit_quietly, reply_text
from mail_gateway.errors import FieldError, InvalidMessageError, TransientDeliveryError
from mail_gateway.http import docs
from mail_gateway.http.body import json_body
from mail_gateway.mail.addresses import addr_spec, envelope_address, parse_address
from mail_gateway.mail.reader import MessageReader
from mail_gateway.mail.request import validation_errors
from mail_gateway.outbox.api import kept_or_404
from mail_gateway.outbox.tool_models import ReleaseBody, Released
from mail_gateway.runtime import Runtime
from mail_gateway.settings.mail_url import Upstream
from mail_gateway.settings.outbox import release_relay


def _server(body: ReleaseBody) -> tuple[str, int, bool]:
    settings = Runtime.of().settings
    if body.host is None:
        if settings.gateway_outbox_release_url is None:
            raise InvalidMessageError(errors=[FieldError("host", "no relay is configured: give the SMTP server's "
                                                                 "host (and port), or set GATEWAY_OUTBOX_RELEASE_URL "
                                                                 "to smtp://host:port")])
        host, port, starttls = release_relay(settings.gateway_outbox_release_url)
        return host, body.port or port, starttls if body.starttls is None else body.starttls
    if settings.gateway_env == "production":
        raise InvalidMessageError(errors=[FieldError("host", "production releases only to the relay of "
                                                             "GATEWAY_OUTBOX_RELEASE_URL; leave host out")])
    return body.host, body.port or 25, bool(body.starttls)


def _parsed() -> tuple[ReleaseBody, str]:
    try:
        body = ReleaseBody.model_validate(json_body())
        recipient = envelope_address(addr_spec(parse_address(body.to).text))
    except ValidationError as exc:
        raise InvalidMessageError(errors=validation_errors(exc)) from exc
    except ValueError as exc:
        raise InvalidMessageError(errors=[FieldError("to", f"{exc}; give one address such as "
                                                           "someone@example.com")]) from exc
    return body, recipient


def _sender(data: bytes, envelope_from: str | None) -> str:
    """MAIL FROM: the envelope the message was sent with, else its From address."""
    if envelope_from:
        return envelope_from
    try:
        return envelope_address(addr_spec(parse_address(MessageReader(data).from_).text))
    except ValueError:
        return ""  # the null sender: a message without a usable From is still worth seeing


def _send(upstream: Upstream, sender: str, recipient: str, data: bytes) -> str:
    settings = Runtime.of().settings
    context = client_tls_context(settings.smtp) if upstream.security == "starttls" else None
    conn = connect(upstream, settings.mail_timeout, context)
    try:
        for command, arguments, wanted in (("MAIL", (sender,), 250), ("RCPT", (recipient,), (250, 251))):
            code, reply = conn.mail(*arguments) if command == "MAIL" else conn.rcpt(*arguments)
            if code not in (wanted if isinstance(wanted, tuple) else (wanted,)):
                raise delivery_error(error_for_code(code), f"refused {command}: {code} {reply_text(reply)}",
                                     upstream.name, code, reply, smtp_command=command)
        code, reply = conn.data(data)
        if code != 250:
            raise delivery_error(error_for_code(code), f"refused the message: {code} {reply_text(reply)}",
                                 upstream.name, code, reply)
        return f"{code} {reply_text(reply)}"
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        raise delivery_error(TransientDeliveryError, f"connection lost: {exc or type(exc).__name__}",
                             upstream.name) from exc
    except smtplib.SMTPResponseException as exc:  # DATA's 354 refused
        raise delivery_error(error_for_code(exc.smtp_code), f"refused DATA: {exc.smtp_code}", upstream.name,
                             exc.smtp_code, exc.smtp_error) from exc
    finally:
        quit_quietly(conn)


@docs.operation("Release a kept message to a real SMTP server, to a chosen recipient (the envelope only; the "
                "message is sent as it was kept)", operation_id="release_outbox_message", tag="outbox",
                body=ReleaseBody, responses={200: Released},
                problems=(400, 401, 403, 404, 415, 422, 502, 503))
def release_message(message_id: str) -> dict[str, Any]:
    kept = kept_or_404(message_id)
    body, recipient = _parsed()
    host, port, starttls = _server(body)
    upstream = Upstream(host, port, "starttls" if starttls else "none")
    reply = _send(upstream, _sender(kept.data, kept.envelope_from), recipient, kept.data)
    return {"released": True, "reply": reply}
