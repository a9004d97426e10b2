"""In-process senders, each run in its own process: ``python -m benchmarks.scenarios.library <scenario>``.

The process sets its sender up, sends a few warm-up messages, prints ``READY {json}``, then for each
``run N`` line on stdin sends N messages and prints a JSON line: accepted, failed, elapsed and CPU seconds and the
process's peak RSS. A sender that needs a connection held open holds it across runs, as a caller would.
"""

from __future__ import annotations

import argparse
import json
import os
import smtplib
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from benchmarks import payload

HOST = "127.0.0.1"
WARM_UP = 3
Sender = Callable[[int], tuple[int, int]]  # sends n messages -> (accepted, failed)


def gateway_settings(port: int, extra: dict[str, Any]) -> Any:
    """Settings for the SMTP backend aimed at the sink; ``extra`` fields this version lacks are left out."""
    from mail_gateway.settings import GatewaySettings

    values = {"gateway_env": "production", "gateway_allow_anonymous": True, "mail_backend": "smtp",
              "mail_server": HOST, "mail_port": port}
    values.update({k: v for k, v in extra.items() if k in GatewaySettings.model_fields})
    return GatewaySettings(_env_file=None, **values)


def floor(port: int, stack: ExitStack, **_: Any) -> Sender:
    """A hand-written smtplib loop on one persistent connection, sending bytes built once."""
    conn = stack.enter_context(smtplib.SMTP(HOST, port))
    conn.ehlo()
    data = payload.prebuilt_bytes()

    def send(n: int) -> tuple[int, int]:
        for _ in range(n):
            conn.sendmail(payload.SENDER, [payload.RECIPIENT], data)
        return n, 0

    return send


def _extension_app(mail_class: Any, port: int, stack: ExitStack) -> Any:
    """A Flask app configured for the sink with ``mail_class`` (flask-mailman's or Flask-Mail's ``Mail``)."""
    from flask import Flask

    app = Flask(f"bench_{mail_class.__module__}")
    app.config.update(MAIL_SERVER=HOST, MAIL_PORT=port, MAIL_USE_TLS=False, MAIL_USE_SSL=False,
                      MAIL_DEFAULT_SENDER=payload.SENDER)
    mail = mail_class(app)
    stack.enter_context(app.app_context())
    return mail


def _mailman_app(port: int, stack: ExitStack) -> Any:
    from flask_mailman import Mail

    return _extension_app(Mail, port, stack)


def mailman_per_message(port: int, stack: ExitStack, **_: Any) -> Sender:
    """flask-mailman's ``send_mail``: its default opens one connection per call."""
    mail = _mailman_app(port, stack)

    def send(n: int) -> tuple[int, int]:
        sent = sum(mail.send_mail(payload.SUBJECT, payload.TEXT, payload.SENDER, [payload.RECIPIENT]) for _ in range(n))
        return sent, n - sent

    return send


def mailman_held(port: int, stack: ExitStack, **_: Any) -> Sender:
    """flask-mailman with one connection held open by the caller."""
    from flask_mailman import EmailMessage

    mail = _mailman_app(port, stack)
    conn = stack.enter_context(mail.get_connection())

    def send(n: int) -> tuple[int, int]:
        sent = sum(EmailMessage(payload.SUBJECT, payload.TEXT, payload.SENDER, [payload.RECIPIENT],
                                connection=conn).send() for _ in range(n))
        return sent, n - sent

    return send


def _flask_mail_app(port: int, stack: ExitStack) -> Any:
    from flask_mail import Mail

    return _extension_app(Mail, port, stack)


def _flask_mail_message() -> Any:
    from flask_mail import Message

    return Message(payload.SUBJECT, sender=payload.SENDER, recipients=[payload.RECIPIENT], body=payload.TEXT)


def flask_mail_per_message(port: int, stack: ExitStack, **_: Any) -> Sender:
    """Flask-Mail's ``mail.send``: one connection per call."""
    mail = _flask_mail_app(port, stack)

    def send(n: int) -> tuple[int, int]:
        for _ in range(n):
            mail.send(_flask_mail_message())
        return n, 0  # mail.send raises on failure

    return send


def flask_mail_held(port: int, stack: ExitStack, **_: Any) -> Sender:
    """Flask-Mail with one connection held open by the caller (``mail.connect()``)."""
    mail = _flask_mail_app(port, stack)
    conn = stack.enter_context(mail.connect())

    def send(n: int) -> tuple[int, int]:
        for _ in range(n):
            conn.send(_flask_mail_message())
        return n, 0

    return send


def _gateway_message() -> Any:
    from flask_mailman import EmailMessage

    return EmailMessage(payload.SUBJECT, payload.TEXT, payload.SENDER, [payload.RECIPIENT])


def _gateway_backend(port: int, stack: ExitStack, settings: dict[str, Any]) -> Any:
    from mail_gateway.backends.registry import create_backend

    backend = create_backend(gateway_settings(port, settings))
    stack.callback(backend.close)
    return backend


def gateway_single(port: int, stack: ExitStack, settings: dict[str, Any], **_: Any) -> Sender:
    """The gateway's backend as a library, one message per call: ``send_messages([message])``."""
    backend = _gateway_backend(port, stack, settings)

    def send(n: int) -> tuple[int, int]:
        accepted = sum(1 for _ in range(n) if backend.send_messages([_gateway_message()])[0].accepted)
        return accepted, n - accepted

    return send


def gateway_batch(port: int, stack: ExitStack, settings: dict[str, Any], batch_size: int, **_: Any) -> Sender:
    """The gateway's backend as a library, rendering then ``deliver_all`` per ``batch_size`` messages."""
    from mail_gateway.mail.objects import render_email
    from mail_gateway.mail.result import SendResult

    backend = _gateway_backend(port, stack, settings)

    def send(n: int) -> tuple[int, int]:
        accepted = 0
        for start in range(0, n, batch_size):
            rendered = [render_email(_gateway_message()) for _ in range(min(batch_size, n - start))]
            outcomes = backend.deliver_all(rendered)
            accepted += sum(1 for o in outcomes if isinstance(o, SendResult) and o.accepted)
        return accepted, n - accepted

    return send


SCENARIOS: dict[str, Callable[..., Sender]] = {
    "floor": floor,
    "flask-mailman": mailman_per_message,
    "flask-mailman-held": mailman_held,
    "flask-mail": flask_mail_per_message,
    "flask-mail-held": flask_mail_held,
    "gateway-library": gateway_single,
    "gateway-library-batch": gateway_batch,
}


def peak_rss_kib() -> int | None:
    # VmHWM rather than ru_maxrss, which Linux carries over from the parent across fork and exec.
    from benchmarks.procs import peak_rss_kib as of_pid

    return of_pid(os.getpid())


def emit(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--settings", default="{}", help="extra gateway settings fields as JSON")
    args = parser.parse_args()
    with ExitStack() as stack:
        send = SCENARIOS[args.scenario](args.port, stack, settings=json.loads(args.settings),
                                        batch_size=args.batch_size)
        accepted, failed = send(WARM_UP)
        sys.stdout.write("READY ")
        emit({"accepted": accepted, "failed": failed})
        for line in sys.stdin:
            n = int(line.split()[1])
            start, cpu = time.perf_counter(), time.process_time()
            accepted, failed = send(n)
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
            emit({"accepted": accepted, "failed": failed, "elapsed": elapsed, "cpu": cpu,
                  "peak_rss_kib": peak_rss_kib()})


if __name__ == "__main__":
    main()
