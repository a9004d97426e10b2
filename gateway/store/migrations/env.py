"""Alembic's environment for the store: migrations run on the connection the gateway hands over
(``mail_gateway.store.engine.upgrade``), never on a URL from a file, so no password is written anywhere."""

from __future__ import annotations

from alembic import context

from mail_gateway.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
