"""The ``mail-gateway`` command: ``serve`` the HTTP API, or ``send`` one message without HTTP."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click
from flask import Flask

from backends.errors import ConfigurationError, DeliveryError
from backends.result import RecipientResult
from gateway.app import create_app
from gateway.cli_check import check
from gateway.cli_smtpd import smtpd, start_ingress
from gateway.extension import MailGateway
from gateway.log_setup import configure_logging
from gateway.messages import build_message
from gateway.problems import InvalidRequest
from gateway.schemas import parse_message_request
from settings import GatewaySettings, load_settings


def load_app(**overrides: object) -> tuple[GatewaySettings, Flask]:
    """Settings and app, or exit with the configuration error in one line (no traceback)."""
    try:
        settings = load_settings(**overrides)
        return settings, create_app(settings)
    except ConfigurationError as exc:
        raise click.ClickException(f"configuration error: {exc}") from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """A mail gateway with pluggable backends (smtp, console, file, memory)."""


@main.command()
@click.option("--host", help="Address to listen on (default: GATEWAY_HOST, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port to listen on (default: GATEWAY_PORT, 8000).")
@click.option("--threads", type=click.IntRange(1, 256), default=8, show_default=True,
              help="Worker threads of the WSGI server.")
@click.option("--smtp", is_flag=True,
              help="Also accept mail over SMTP on GATEWAY_SMTP_HOST:GATEWAY_SMTP_PORT, through the same backend.")
def serve(host: str | None, port: int | None, threads: int, smtp: bool) -> None:
    """Serve the HTTP API under waitress, a production WSGI server (and the SMTP ingress with --smtp)."""
    from waitress import serve as waitress_serve

    overrides = {k: v for k, v in (("gateway_host", host), ("gateway_port", port)) if v is not None}
    settings, app = load_app(**overrides)
    configure_logging()
    # SIGTERM (how service managers stop a process) unwinds like Ctrl-C: the ingress stops and queued log
    # lines are written before the process ends.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ingress = start_ingress(settings, app) if smtp else None
    click.echo(
        f"mail-gateway ({settings.gateway_env}, backend {settings.backend_name}) on "
        f"http://{settings.gateway_host}:{settings.gateway_port}",
        err=True,
    )
    try:
        # waitress would otherwise read bodies of up to 1 GiB before the app's own 413 could refuse them.
        waitress_serve(app, host=settings.gateway_host, port=settings.gateway_port, threads=threads,
                       ident="mail-gateway", max_request_body_size=settings.gateway_max_message_bytes)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {settings.gateway_host}:{settings.gateway_port} ({exc.strerror or exc}); "
            "set GATEWAY_HOST/GATEWAY_PORT or pass --host/--port"
        ) from exc
    finally:
        if ingress is not None:
            ingress.stop()


def _recipient_line(result: RecipientResult) -> str:
    line = f"  {result.status:<9}{result.email}"
    if result.code is not None:
        line += f"  {result.code} {result.reason or ''}".rstrip()
    return line


@main.command()
@click.option("--from", "sender", help="Sender (default: MAIL_DEFAULT_SENDER).")
@click.option("--to", multiple=True, help="Recipient; repeat for several.")
@click.option("--cc", multiple=True, help="Cc recipient; repeat for several.")
@click.option("--bcc", multiple=True, help="Bcc recipient; repeat for several.")
@click.option("--subject", default="", help="Subject line.")
@click.option("--text", help="Plain-text body.")
@click.option("--html", help="HTML body.")
@click.option("--html-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read the HTML body from this UTF-8 file (instead of --html).")
@click.option("--attach", "attachments", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Attach this file (content type guessed from its name); repeat for several.")
def send(sender: str | None, to: tuple[str, ...], cc: tuple[str, ...], bcc: tuple[str, ...], subject: str,
         text: str | None, html: str | None, html_file: Path | None, attachments: tuple[Path, ...]) -> None:
    """Send one message through the configured backend and print each recipient's outcome."""
    if html_file is not None:
        if html is not None:
            raise click.UsageError("--html and --html-file: give only one")
        try:
            html = html_file.read_text(encoding="utf-8")
        except (OSError, UnicodeError) as exc:
            raise click.BadParameter(f"cannot read {html_file} as UTF-8 ({exc})", param_hint="--html-file") from exc
    files: list[tuple[str, bytes]] = []
    for path in attachments:
        try:
            files.append((path.name, path.read_bytes()))
        except OSError as exc:
            raise click.BadParameter(f"cannot read {path} ({exc.strerror or exc})", param_hint="--attach") from exc
    settings, app = load_app()
    payload = {"from": sender, "to": list(to), "cc": list(cc), "bcc": list(bcc), "subject": subject,
               "text": text, "html": html}
    payload = {k: v for k, v in payload.items() if v is not None}
    try:
        request = parse_message_request(payload, default_sender=settings.mail_default_sender)
    except InvalidRequest as exc:
        options = {"from": "--from", "text": "--text"}
        lines = [f"{options.get(e.field, '--' + e.field.split('[')[0])}: {e.message}" for e in exc.errors]
        raise click.UsageError("\n".join(lines)) from exc
    with app.app_context():
        state = MailGateway.state(app)
        try:
            message = build_message(request, default_sender=settings.mail_default_sender)
            for name, content in files:
                message.attach(name, content)  # flask-mailman guesses the content type from the name
            result = state.send(message)
        except DeliveryError as exc:
            click.echo(f"not sent: {exc}", err=True)
            for recipient in exc.recipients:
                click.echo(_recipient_line(recipient), err=True)
            sys.exit(1)
    # stderr, so the console backend's copy of the message on stdout stays clean
    click.echo(f"Message-ID: {result.message_id}", err=True)
    for recipient in result.recipients:
        click.echo(_recipient_line(recipient), err=True)


main.add_command(check)
main.add_command(smtpd)
