"""``GATEWAY_STORE_URL``: an embedded SQLite file, or a PostgreSQL server that several processes and hosts share.

``sqlite:///relative/path`` and ``sqlite:////absolute/path`` name a file; ``postgresql://user:password@host:5432/db``
(``postgres://`` and ``postgresql+psycopg://`` too) a server, reached with psycopg 3. The URL may carry a password,
so the setting is a secret: reprs show asterisks, and no error message repeats the URL or any part of it.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import SecretStr

from mail_gateway.settings.core import require_utf8
from mail_gateway.settings.hosts import split_url

SQLITE_URL_PREFIX = "sqlite:///"
DEFAULT_STORE_URL = SQLITE_URL_PREFIX + ".mail-gateway.sqlite3"
POSTGRES_DRIVER = "postgresql+psycopg"
_POSTGRES_SCHEMES = ("postgresql", "postgres", POSTGRES_DRIVER)
_SHORT_SECRET = 8
STORE_URL_FIX = ("set it to sqlite:///relative/path.sqlite3, sqlite:////absolute/path.sqlite3 or "
                 "postgresql://user:password@host:5432/database")


def _postgres(text: str) -> str:
    scheme, _, rest = text.partition("://")
    parts = split_url(f"{POSTGRES_DRIVER}://{rest}")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ValueError("its host or port is not valid (percent-encode '/', '?', '#', '@' and ':' in the user "
                         "name or password)") from None
    if parts.netloc.count("@") > 1:
        # The check reads the login up to the last '@', SQLAlchemy up to the first: the rest would be the host.
        raise ValueError("its user name or password holds an '@'; percent-encode it there as %40")
    if not parts.hostname and "host=" not in parts.query:
        raise ValueError("it names no PostgreSQL host (postgresql://user:password@host:5432/database)")
    if not parts.path.strip("/"):
        raise ValueError("it names no database (postgresql://user:password@host:5432/database)")
    if parts.fragment:
        raise ValueError("it has a fragment ('#...'); percent-encode '#' in a password as %23")
    return f"{POSTGRES_DRIVER}://{rest}"


def parse_store_url(value: Any) -> SecretStr:
    """The URL, normalised (PostgreSQL through psycopg 3), as a secret; ValueError with a reason free of it."""
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    if not isinstance(text, str):
        raise ValueError("it must be a URL string")
    text = text.strip()
    require_utf8(text)
    if text.startswith(SQLITE_URL_PREFIX):
        if len(text) == len(SQLITE_URL_PREFIX) or "?" in text:
            raise ValueError("it is not a sqlite:/// URL with a file path")
        if text == SQLITE_URL_PREFIX + ":memory:":  # SQLAlchemy's pool for it takes none of the store's options
            raise ValueError("it names an in-memory SQLite database, which each connection sees as a new, empty one "
                             "and which keeps nothing past the process; name a file")
        return SecretStr(text)
    if text.partition("://")[0].lower() in _POSTGRES_SCHEMES and "://" in text:
        return SecretStr(_postgres(text))
    raise ValueError("it is neither a sqlite:/// file nor a postgresql:// server")


def is_shared(url: str) -> bool:
    """A server database several processes and hosts share (PostgreSQL), rather than an embedded file."""
    return not url.startswith(SQLITE_URL_PREFIX)


def hide_secret(text: str, *secrets: str | None) -> str:
    """``text`` with each of ``secrets`` replaced by ``***`` where it stands as a value: a whole token, bounded by
    anything but a letter, digit or ``_`` (the start, the end, white space, quotes, a URL's ``:``, ``@`` and
    ``/``). A secret shorter than ``_SHORT_SECRET`` characters is masked only there, since inside a word it is a
    coincidence (password ``p`` in "port"); a longer one wherever it appears."""
    for secret in filter(None, secrets):
        if len(secret) >= _SHORT_SECRET:
            text = text.replace(secret, "***")
        else:
            text = re.sub(rf"(?<!\w){re.escape(secret)}(?!\w)", "***", text)
    return text
