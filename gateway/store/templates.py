"""Stored templates in the store: create a name once, replace it (its version grows by one), read, list, delete.

Every function takes the connection of a transaction and the time from its caller, so that a change run twice by
the group-commit writer (``writer``) changes nothing more. Each change is noted (``note_change``): a process
keeping compiled templates drops what it read while one of its own changes was under way.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete as delete_rows
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from mail_gateway.store.schema import templates as table
from mail_gateway.store.writer import note_change

TABLE = table.name


@dataclass(frozen=True)
class StoredTemplate:
    name: str
    version: int
    subject: str
    text: str | None
    html: str | None
    created_at: float
    updated_at: float


def get(conn: Connection, name: str) -> StoredTemplate | None:
    row = conn.execute(select(table).where(table.c.name == name)).first()
    return None if row is None else StoredTemplate(**row._mapping)


def list_all(conn: Connection) -> list[StoredTemplate]:
    """Every stored template, by name."""
    return [StoredTemplate(**row._mapping) for row in conn.execute(select(table).order_by(table.c.name))]


def create(conn: Connection, name: str, *, subject: str, text: str | None, html: str | None,
           now: float) -> StoredTemplate | None:
    """The new template at version 1; None when the name is taken (by another process too, on a server)."""
    note_change(conn, TABLE)
    try:
        with conn.begin_nested():
            conn.execute(insert(table).values(name=name, version=1, subject=subject, text=text, html=html,
                                              created_at=now, updated_at=now))
    except IntegrityError:  # a server database lets two processes both see the name free
        return None
    return StoredTemplate(name, 1, subject, text, html, now, now)


def replace(conn: Connection, name: str, *, subject: str, text: str | None, html: str | None,
            now: float) -> StoredTemplate | None:
    """The template with its parts replaced and its version one higher; None when there is none of that name."""
    note_change(conn, TABLE)
    # One statement: two replacements at once each get a version of their own (the row lock orders them).
    done = conn.execute(update(table).where(table.c.name == name).values(
        version=table.c.version + 1, subject=subject, text=text, html=html, updated_at=now))
    return get(conn, name) if done.rowcount else None


def delete(conn: Connection, name: str) -> bool:
    note_change(conn, TABLE)
    return conn.execute(delete_rows(table).where(table.c.name == name)).rowcount > 0
