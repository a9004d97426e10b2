"""The store: one database for everything the gateway keeps — queued messages and their bodies, each recipient's
state, the attempts' history, webhook deliveries and idempotency keys.

SQLAlchemy Core on SQLite (the embedded default; WAL, ``synchronous=FULL``); every statement is written so that it
runs on PostgreSQL too. The schema is managed by Alembic migrations (``migrations/``); an embedded SQLite store
upgrades itself when it is opened. Writes go through one group-commit writer per process (``writer``), so many
request threads share one fsync.
"""
