"""``mail-gateway queue``: look into the store like ``mailq``, show one message, retry or cancel."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from mail_gateway.cli.common import configured
from mail_gateway.errors import QueueError
from mail_gateway.queue.setup import open_store
from mail_gateway.settings import GatewaySettings, load_settings
from mail_gateway.store import actions, messages
from mail_gateway.store.database import Store
from mail_gateway.store.status import MESSAGE_STATES
from mail_gateway.store.webhooks import iso

PAGE = 500
TIMES = ("created_at", "send_at", "due_at", "next_attempt_at", "at")


def _store() -> tuple[GatewaySettings, Store]:
    """The store the gateway uses, opened for an operator's command, which never creates one: the default
    SQLite file is relative to the current directory, and a new empty store in the wrong place would answer
    "0 in the store" as though the queue were empty."""
    settings = configured(load_settings)
    store = configured(lambda: Store(settings.store_url))
    if store.path is not None and not Path(store.path).exists():
        raise click.ClickException(
            f"no store at {Path(store.path).resolve()}: GATEWAY_STORE_URL names a file that does not exist (the "
            "default, sqlite:///.mail-gateway.sqlite3, is relative to the current directory); run the command "
            "where the gateway runs, or set GATEWAY_STORE_URL to the gateway's store")
    return settings, configured(lambda: open_store(store))


def _where(store: Store) -> str:
    return str(Path(store.path).resolve()) if store.path is not None else store.describe()


def _readable(item: dict[str, Any]) -> dict[str, Any]:
    """Every time as RFC 3339, as the status API shows it, in the message, its recipients and its events."""
    shown = {key: iso(value) if key in TIMES and value is not None else value for key, value in item.items()}
    for key in ("recipients", "events"):
        if key in shown:
            shown[key] = [_readable(sub) for sub in shown[key]]
    return shown


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _line(message: dict[str, Any], now: float) -> str:
    last = f"{message['last_code'] or ''} {message['last_reason'] or ''}".strip() or "-"
    return (f"{message['id']}  {_age(now - message['created_at']):>4}  {message['size']:>8}  {message['status']:<9}  "
            f"{message['envelope_from'] or '<>'}  last: {last[:80]}")


@click.group(invoke_without_command=True)
@click.option("--status", type=click.Choice(MESSAGE_STATES), help="Only messages in this status.")
@click.option("--all", "show_all", is_flag=True, help="Finished messages too (default: pending ones).")
@click.option("--tag", help="Only messages with this tag.")
@click.option("--recipient", help="Only messages sent to this address (whatever the case of its ASCII letters).")
@click.pass_context
def queue(ctx: click.Context, status: str | None, show_all: bool, tag: str | None, recipient: str | None) -> None:
    """List queued messages like mailq: id, age, size, status, sender, recipients, last reply."""
    if ctx.invoked_subcommand is not None:
        return
    _, store = _store()
    now = time.time()
    pending = not show_all and status is None
    shown, start = 0, 0
    while True:  # every match, a page at a time, as mailq lists the whole queue
        _, page = store.read(lambda conn, start=start: messages.list_messages(
            conn, status=status, limit=PAGE, start=start, now=now, pending=pending, tag=tag, recipient=recipient))
        for summary in page:
            found = store.read(lambda conn, i=summary["id"]: messages.get_message(conn, i, now))
            if found is not None:  # purged since the page was read
                _print_entry(found, now)
                shown += 1
        start += PAGE
        if len(page) < PAGE:
            break
    in_store = store.read(lambda conn: messages.list_messages(conn, status=None, limit=1, start=0, now=now)[0])
    click.echo(f"-- {shown} message(s) shown, {in_store} in the store at {_where(store)}")


def _print_entry(found: dict[str, Any], now: float) -> None:
    click.echo(_line(found, now))
    for r in found["recipients"]:
        click.echo(f"    {r['status']:<9} {r['email']}  attempts {r['attempts']}"
                   + (f"  {r['code'] or ''} {r['reason'] or ''}".rstrip() if r["code"] or r["reason"] else ""))


def _known(message_id: str) -> str:
    # An argument of bytes that are not UTF-8 arrives with lone surrogates, which no store can encode: it was a
    # traceback. Such an id, or one with a NUL, is no message's, as the status routes answer.
    if not messages.could_be_id(message_id):
        raise click.ClickException(f"no queued message has the id {message_id!r}")
    return message_id


@queue.command()
@click.argument("message_id")
def show(message_id: str) -> None:
    """One message as JSON: status, recipients, events."""
    _, store = _store()
    message_id = _known(message_id)
    found = store.read(lambda conn: messages.get_message(conn, message_id, time.time()))
    if found is None:
        raise click.ClickException(f"no queued message has the id {message_id!r}")
    click.echo(json.dumps(_readable(found), indent=2, default=str))


@queue.command()
@click.argument("message_id", required=False)
@click.option("--all", "every", is_flag=True, help="Every pending message.")
def retry(message_id: str | None, every: bool) -> None:
    """Make a message's pending recipients (or, with --all, every pending message) due now."""
    if (message_id is None) == (not every):
        raise click.UsageError("give a message id or --all")
    _, store = _store()
    try:
        if every:
            count = store.write(lambda conn: actions.retry_all(conn, time.time()))
            click.echo(f"{count} message(s) due now")
        else:
            known = _known(message_id)
            count = store.write(lambda conn: actions.retry_now(conn, known, time.time()))
            click.echo(f"{message_id}: {count} recipient(s) due now")
    except QueueError as exc:
        raise click.ClickException(str(exc)) from exc


@queue.command()
@click.argument("message_id")
def cancel(message_id: str) -> None:
    """Cancel a message's pending recipients."""
    settings, store = _store()
    known = _known(message_id)
    try:
        count = store.write(lambda conn: actions.cancel(conn, known, time.time(), settings.gateway_webhook_url))
    except QueueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{message_id}: {count} recipient(s) canceled")
