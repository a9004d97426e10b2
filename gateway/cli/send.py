"""``mail-gateway send``: one message through the configured backend (or, with queued delivery, into the store for
the delivery workers), without HTTP or a Flask app."""

from __future__ import annotations

import mimetypes
import sys
from pathlib import Path

import click

from mail_gateway.assembly import build_sender
from mail_gateway.cli.common import configured
from mail_gateway.errors import DeliveryError, InvalidMessageError, StoreUnavailableError
from mail_gateway.mail.result import QueuedResult, RecipientResult
from mail_gateway.sending import Accepted
from mail_gateway.settings import load_settings

_OPTIONS = {"from": "--from", "text": "--text", "reply_to": "--reply-to", "headers": "--header"}


def _recipient_line(result: RecipientResult) -> str:
    line = f"  {result.status:<9}{result.email}"
    if result.code is not None:
        line += f"  {result.code} {result.reason or ''}".rstrip()
    return line


def _report(result: Accepted) -> None:
    # stderr, so the console backend's copy of the message on stdout stays clean
    if isinstance(result, QueuedResult):
        click.echo(f"ID: {result.id}", err=True)
    click.echo(f"Message-ID: {result.message_id}", err=True)
    if isinstance(result, QueuedResult):
        for email in result.recipients:
            click.echo(f"  {result.status:<9}{email}", err=True)
    else:
        for recipient in result.recipients:
            click.echo(_recipient_line(recipient), err=True)


def _option(field: str, template: str | None) -> str:
    if field == "attachments" or field.startswith("attachments["):  # one attachment, or all of them at once
        return "--attach"
    if field.startswith("variables"):
        return "--var"
    if template is not None and field in ("template", "subject", "text", "html"):
        return "--template"  # what the template made, or the template itself
    name = field.split("[")[0].split(".")[0]  # headers.Bcc: the --header option
    return _OPTIONS.get(name, "--" + name)


def _variables(given: tuple[str, ...]) -> dict[str, str]:
    variables: dict[str, str] = {}
    for text in given:
        name, equals, value = text.partition("=")
        if not equals or not name.strip():
            raise click.BadParameter(f"{text!r} is not key=value", param_hint="--var")
        variables[name.strip()] = value
    return variables


def _headers(given: tuple[str, ...]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for text in given:
        name, colon, value = text.partition(":")
        if not colon or not name.strip():
            raise click.BadParameter(f"{text!r} is not 'Name: value'", param_hint="--header")
        headers[name.strip()] = value.strip()
    return headers


def _read_html(html: str | None, html_file: Path | None) -> str | None:
    if html_file is None:
        return html
    if html is not None:
        raise click.UsageError("--html and --html-file: give only one")
    try:
        return html_file.read_text(encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        raise click.BadParameter(f"cannot read {html_file} as UTF-8 ({exc})", param_hint="--html-file") from exc


def _attachment(path: Path) -> dict[str, object]:
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path} ({exc.strerror or exc})", param_hint="--attach") from exc
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return {"filename": path.name, "content": content, "content_type": content_type}


@click.command()
@click.option("--from", "sender_address", help="Sender (default: MAIL_DEFAULT_SENDER).")
@click.option("--to", multiple=True, help="Recipient; repeat for several.")
@click.option("--cc", multiple=True, help="Cc recipient; repeat for several.")
@click.option("--bcc", multiple=True, help="Bcc recipient; repeat for several.")
@click.option("--reply-to", multiple=True, help="Reply-To address; repeat for several.")
@click.option("--subject", help="Subject line.")
@click.option("--text", help="Plain-text body.")
@click.option("--html", help="HTML body.")
@click.option("--html-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read the HTML body from this UTF-8 file (instead of --html).")
@click.option("--attach", "attachments", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Attach this file (content type guessed from its name); repeat for several.")
@click.option("--header", "headers", multiple=True, help="An extra header, 'Name: value'; repeat for several.")
@click.option("--template", help="A stored template (or a file of GATEWAY_TEMPLATES_DIR) that makes the subject, "
                                 "text and HTML.")
@click.option("--var", "variables", multiple=True, help="A variable of the template, key=value (a string); repeat "
                                                        "for several.")
@click.option("--unsubscribe", is_flag=True, help="Add a one-click unsubscribe link for the one recipient (needs "
                                                  "GATEWAY_PUBLIC_URL and GATEWAY_UNSUBSCRIBE_SECRET).")
def send(sender_address: str | None, to: tuple[str, ...], cc: tuple[str, ...], bcc: tuple[str, ...],
         reply_to: tuple[str, ...], subject: str | None, text: str | None, html: str | None, html_file: Path | None,
         attachments: tuple[Path, ...], headers: tuple[str, ...], template: str | None,
         variables: tuple[str, ...], unsubscribe: bool) -> None:
    """Send one message through the configured backend and print each recipient's outcome; with queued delivery,
    store it for the delivery workers and print its id."""
    html = _read_html(html, html_file)
    files = [_attachment(path) for path in attachments]
    values = _variables(variables)
    settings = configured(load_settings)
    sender, store = configured(lambda: build_sender(settings))
    payload = {"from": sender_address, "to": list(to), "cc": list(cc), "bcc": list(bcc),
               "reply_to": list(reply_to), "subject": subject, "text": text, "html": html, "attachments": files,
               "headers": _headers(headers), "template": template, "variables": values or None,
               "unsubscribe": unsubscribe or None}
    try:
        request = sender.parse({k: v for k, v in payload.items() if v is not None})
        result = sender.send(request, via="cli")
    except InvalidMessageError as exc:
        raise click.UsageError("\n".join(f"{_option(e.field, template)}: {e.message}" for e in exc.errors)) from exc
    except DeliveryError as exc:
        click.echo(f"not sent: {exc}", err=True)
        for recipient in exc.recipients:
            click.echo(_recipient_line(recipient), err=True)
        sys.exit(1)
    except StoreUnavailableError as exc:  # queued delivery, and nothing was stored
        click.echo(f"not stored: {exc}", err=True)
        sys.exit(1)
    finally:
        sender.close()
        store.close()
    _report(result)
