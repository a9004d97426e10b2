"""``mail-gateway queue``: look into the store like ``mailq``, show one message, retry or cancel."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from mail_gateway.cli.common import configured
from mail_gateway.errors import QueueError
from mail_gateway.queue.setup import open_store
from mail_gateway.settings import GatewaySettings, load_settings
from mail_gateway.store import actions, messages
from mail_gateway.store.database import Store
from mail_gateway.store.webhooks import iso


def _store() -> tuple[GatewaySettings, Store]:
    settings = configured(load_settings)
    return settings, configured(lambda: open_store(Store(settings.store_url)))


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
@click.option("--status", help="Only messages in this status (queued, deferred, delivered, ...).")
@click.option("--all", "show_all", is_flag=True, help="Finished messages too (default: pending ones).")
@click.pass_context
def queue(ctx: click.Context, status: str | None, show_all: bool) -> None:
    """List queued messages like mailq: id, age, size, status, sender, recipients, last reply."""
    if ctx.invoked_subcommand is not None:
        return
    _, store = _store()
    now = time.time()
    total, page = store.read(lambda conn: messages.list_messages(conn, status=status, limit=1000, start=0, now=now))
    shown = 0
    for summary in page:
        if not show_all and status is None and summary["due_at"] is None:
            continue
        found = store.read(lambda conn, i=summary["id"]: messages.get_message(conn, i, now))
        click.echo(_line(found, now))
        for r in found["recipients"]:
            click.echo(f"    {r['status']:<9} {r['email']}  attempts {r['attempts']}"
                       + (f"  {r['code'] or ''} {r['reason'] or ''}".rstrip() if r["code"] or r["reason"] else ""))
        shown += 1
    click.echo(f"-- {shown} message(s) shown, {total} in the store")


@queue.command()
@click.argument("message_id")
def show(message_id: str) -> None:
    """One message as JSON: status, recipients, events."""
    _, store = _store()
    found = store.read(lambda conn: messages.get_message(conn, message_id, time.time()))
    if found is None:
        raise click.ClickException(f"no queued message has the id {message_id!r}")
    for event in found["events"]:
        event["at"] = iso(event["at"])
    click.echo(json.dumps(found, indent=2, default=str))


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
            count = store.write(lambda conn: actions.retry_now(conn, message_id, time.time()))
            click.echo(f"{message_id}: {count} recipient(s) due now")
    except QueueError as exc:
        raise click.ClickException(str(exc)) from exc


@queue.command()
@click.argument("message_id")
def cancel(message_id: str) -> None:
    """Cancel a message's pending recipients."""
    settings, store = _store()
    try:
        count = store.write(lambda conn: actions.cancel(conn, message_id, time.time(), settings.gateway_webhook_url))
    except QueueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{message_id}: {count} recipient(s) canceled")
