"""Alembic's environment for the store: migrations run on the connection the gateway hands over
(``mail_gateway.store.engine.upgrade``), never on a URL from a file, so no password is written anywhere."""

from __future__ import annotations

from alembic import context

from mail_gateway.store.schema import metadata

MIGRATION_LOCK = 0x6D61696C  # any constant: `mail-gateway db upgrade` run on two hosts at once takes turns

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
    context.run_migrations()
