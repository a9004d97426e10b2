"""``mail-gateway db``: the store's schema. ``db upgrade`` applies the migrations this version has; a shared
(PostgreSQL) store is upgraded this way, once per release, before the new ``serve`` and ``worker`` processes start
(they refuse an older schema). An embedded SQLite store upgrades itself when it is opened."""

from __future__ import annotations

import click
from sqlalchemy.exc import SQLAlchemyError

from mail_gateway.cli.common import configured
from mail_gateway.errors import StoreSchemaError, StoreUnavailableError
from mail_gateway.settings import load_settings
from mail_gateway.store.database import Store
from mail_gateway.store.engine import head_revision, verify_schema


def _store() -> Store:
    settings = configured(load_settings)
    return configured(lambda: Store(settings.store_url, pool_size=1))


@click.group()
def db() -> None:
    """The store's schema (GATEWAY_STORE_URL): upgrade it, or see whether it is current."""


@db.command()
def upgrade() -> None:
    """Apply every migration this version has to the store (safe to run again, and from two hosts at once)."""
    store = _store()
    try:
        before, after = store.upgrade()
    except StoreUnavailableError as exc:
        raise click.ClickException(f"store {store.describe()}: {exc}") from exc
    finally:
        store.close()
    if before == after:
        click.echo(f"store {store.describe()}: schema already at revision {after}")
    else:
        click.echo(f"store {store.describe()}: schema upgraded from {before or 'nothing'} to revision {after}")


@db.command()
def check() -> None:
    """Exit 0 when the store's schema is this version's; else 1, saying what to run. Changes nothing."""
    store = _store()
    try:
        verify_schema(store.engine)
    except StoreSchemaError as exc:
        raise click.ClickException(f"store {store.describe()}: {exc}") from exc
    except (SQLAlchemyError, OSError) as exc:
        raise click.ClickException(f"store {store.describe()}: {store.error_text(exc)}") from exc
    finally:
        store.close()
    click.echo(f"store {store.describe()}: schema at revision {head_revision()}, this version's")
