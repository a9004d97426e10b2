"""The distribution's extras, and the one way a feature whose extra is not installed stops start-up.

``pip install mail-gateway`` installs what the Flask extension, the four backends, the pytest fixture and the
basic commands need. The rest comes with extras (``pip install 'mail-gateway[queue]'``), and the modules that
need them are imported only when their feature is used, here, so that a missing one is named with the extra to
install instead of surfacing as a ``ModuleNotFoundError`` from deep inside.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib.util import find_spec

from mail_gateway.errors import ConfigurationError

DISTRIBUTION = "mail-gateway"
# Each optional top-level package, by the extra that installs it (pyproject.toml's optional-dependencies).
EXTRAS = {
    "sqlalchemy": "queue", "alembic": "queue", "prometheus_client": "queue", "standardwebhooks": "queue",
    "waitress": "server", "gunicorn": "server", "aiosmtpd": "server",
    "psycopg": "postgres",
    "dkim": "dkim", "nacl": "dkim", "cryptography": "dkim",
    "css_inline": "templates", "lxml": "templates", "tinycss2": "templates",
}


def missing_extra(extra: str, feature: str, variable: str | None = None) -> ConfigurationError:
    """The start-up error of a feature whose extra is missing (its ``extra`` set)."""
    return ConfigurationError(f"{feature} needs the {extra} extra: pip install '{DISTRIBUTION}[{extra}]'",
                              extra=extra, variable=variable)


def installed(extra: str) -> bool:
    """Whether every package of ``extra`` can be imported (found, not loaded: that stays for first use)."""
    return all(find_spec(name) is not None for name, of in EXTRAS.items() if of == extra)


def require(extra: str, feature: str, variable: str | None = None) -> None:
    """Raise ``ConfigurationError`` unless ``extra`` is installed; ``feature`` is what needs it, as the user asked
    for it (a setting and its value, a command)."""
    if not installed(extra):
        raise missing_extra(extra, feature, variable)


@contextmanager
def needs_extra(feature: str, variable: str | None = None) -> Iterator[None]:
    """Around imports: a ``ModuleNotFoundError`` of an optional package becomes ``ConfigurationError`` naming
    its extra; any other is a broken install and goes on as it is."""
    try:
        yield
    except ModuleNotFoundError as exc:
        extra = EXTRAS.get((exc.name or "").partition(".")[0])
        if extra is None:
            raise
        raise missing_extra(extra, feature, variable) from exc
