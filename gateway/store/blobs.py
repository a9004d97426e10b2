"""Message bodies into the store and back out, without whole copies on the way (SQLite's incremental blob I/O).

Bound as a parameter, a body is copied by SQLite into the statement and again into the row it builds, and read
back it is assembled in SQLite's memory before the driver copies it into Python's: a 30 MB raw message cost
60 MB on each side, on top of the message itself. A large body is therefore written as a row of zeros of its
size, then copied once into place from the caller's bytes (``blobopen``), and read back straight into one
``bytes``. Small bodies keep the multi-row insert, where the extra statements would cost more than the copies.
PostgreSQL's driver has no such interface; there the body is a parameter as before.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, func, insert
from sqlalchemy.engine import Connection

from mail_gateway.store import hot
from mail_gateway.store.schema import bodies

IN_PLACE_BYTES = 1 << 20  # bodies from this size on are written in place
_ZEROS = insert(bodies).values(message_id=bindparam("b_id"), data=func.zeroblob(bindparam("b_size")))
_ROWID = "SELECT rowid FROM bodies WHERE message_id = ?"


def write_bodies(conn: Connection, new: Sequence[tuple[str, bytes]]) -> None:
    """Insert each ``(message id, body)``, in the caller's transaction."""
    in_place = [(i, data) for i, data in new if len(data) >= IN_PLACE_BYTES] if conn.dialect.name == "sqlite" else []
    taken = {i for i, _ in in_place}
    inline = [{"message_id": i, "data": data} for i, data in new if i not in taken]
    if inline:
        conn.execute(insert(bodies), inline)
    if not in_place:
        return
    conn.execute(_ZEROS, [{"b_id": i, "b_size": len(data)} for i, data in in_place])
    driver = conn.connection.driver_connection
    for message_id, data in in_place:
        [rowid] = driver.execute(_ROWID, (message_id,)).fetchone()
        with driver.blobopen("bodies", "data", rowid) as blob:
            blob.write(data)


def read_body(conn: Connection, message_id: str) -> bytes | None:
    """The message's body, or None once it has none (delivered, canceled, purged)."""
    if conn.dialect.name != "sqlite":
        return conn.execute(hot.BODY, {"b_message": message_id}).scalar()
    driver = conn.connection.driver_connection
    found = driver.execute(_ROWID, (message_id,)).fetchone()
    if found is None:
        return None
    with driver.blobopen("bodies", "data", found[0], readonly=True) as blob:
        return blob.read()
