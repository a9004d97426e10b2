"""``mail-gateway suppressions``: list, add and remove entries of the suppression list, as the API does."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import click
from pydantic import ValidationError

from mail_gateway.cli.common import configured
from mail_gateway.cli.queue import _store
from mail_gateway.mail.request import validation_errors
from mail_gateway.queue.setup import open_store
from mail_gateway.settings import load_settings
from mail_gateway.store import suppressions
from mail_gateway.store.database import Store
from mail_gateway.store.webhooks import iso
from mail_gateway.suppression.models import NewSuppression, SuppressionQuery

PAGE = 500


@click.group()
def suppressions_group() -> None:
    """The addresses the gateway never sends to (hard bounces, unsubscribes, manual entries)."""


def _line(entry: suppressions.Entry) -> str:
    until = "until removed" if entry.expires_at is None else f"until {iso(entry.expires_at)}"
    return (f"{entry.email}  {entry.reason}  {entry.source}  since {iso(entry.created_at)}  {until}"
            + (f"  {entry.detail}" if entry.detail else ""))


@suppressions_group.command("list")
@click.option("--address", "contains", help="Only addresses containing this text (any case of its ASCII letters).")
@click.option("--reason", type=click.Choice(suppressions.REASONS), help="Only entries of this reason.")
def list_command(contains: str | None, reason: str | None) -> None:
    """Every entry not expired, by address."""
    try:  # as the API reads its filter: a NUL or a lone surrogate (bytes that are not UTF-8) reaches no store
        SuppressionQuery(address=contains)
    except ValidationError as exc:
        raise click.BadParameter(validation_errors(exc)[0].message, param_hint="--address") from exc
    _, store = _store()
    shown, start, now = 0, 0, time.time()
    while True:
        page = store.read(lambda conn, start=start: suppressions.list_entries(
            conn, contains=contains, reason=reason, limit=PAGE, start=start, now=now))
        for entry in page:
            click.echo(_line(entry))
        shown, start = shown + len(page), start + PAGE
        if len(page) < PAGE:
            break
    click.echo(f"-- {shown} suppressed address(es)")


_OPTIONS = {"address": "ADDRESS", "reason": "--reason", "detail": "--detail", "expires_at": "--expires"}


def _checked(address: str, reason: str, detail: str | None, expires: datetime | None) -> None:
    """The entry checked as the API checks it (``NewSuppression``); a usage error naming each option that is wrong."""
    try:
        NewSuppression(address=address, reason=reason, detail=detail, expires_at=expires)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise click.UsageError("; ".join(f"{_OPTIONS.get(e.field, e.field)} {e.message}"
                                         for e in validation_errors(exc))) from exc


@suppressions_group.command("add")
@click.argument("address")
@click.option("--reason", type=click.Choice(suppressions.REASONS), default="manual", show_default=True)
@click.option("--detail", help="A note kept with the entry.")
@click.option("--expires", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d"]),
              help="When the entry ends (ISO 8601, e.g. 2030-01-31 or 2030-01-31T12:00:00+00:00); default: never.")
def add_command(address: str, reason: str, detail: str | None, expires: datetime | None) -> None:
    """Never send to ADDRESS (or renew its entry)."""
    try:
        suppressions.key(address)
    except ValueError as exc:
        raise click.BadParameter(f"{address!r} is not an email address", param_hint="ADDRESS") from exc
    if expires is not None and expires.tzinfo is None:  # a date alone: its start in UTC, wherever this runs
        expires = expires.replace(tzinfo=UTC)
    _checked(address, reason, detail, expires)
    settings = configured(load_settings)
    store = configured(lambda: open_store(Store(settings.store_url)))
    expires_at = None if expires is None else expires.timestamp()
    store.write(lambda conn: suppressions.add(conn, address, reason, source="api", detail=detail,
                                              expires_at=expires_at))
    click.echo(f"suppressed {address} ({reason})")


@suppressions_group.command("remove")
@click.argument("address")
def remove_command(address: str) -> None:
    """Send to ADDRESS again."""
    try:
        suppressions.key(address)
    except ValueError as exc:
        raise click.BadParameter(f"{address!r} is not an email address", param_hint="ADDRESS") from exc
    _, store = _store()
    if not store.write(lambda conn: suppressions.remove(conn, address)):
        raise click.ClickException(f"{address} is not on the suppression list; see `mail-gateway suppressions list`")
    click.echo(f"removed {address}")
