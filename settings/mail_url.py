"""Parse ``MAIL_URL``: one string that chooses the backend and, for SMTP, one or several upstreams.

The forms follow Symfony Mailer's DSNs (``smtp://user:pass@host:587``, ``failover(a b)``,
``roundrobin(a b)``), which operators already know. No library parses that grammar, so it is written here
on top of ``urllib.parse``. Error messages never repeat the URL: it may carry a password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import SecretStr

Security = Literal["none", "starttls", "ssl"]
Strategy = Literal["single", "failover", "roundrobin"]

_GROUP = re.compile(r"^(failover|roundrobin)\((.*)\)$", re.DOTALL)
_SCHEMES = "smtp, smtps, console, file, memory, failover(...) or roundrobin(...)"


@dataclass(frozen=True)
class Upstream:
    """One SMTP server and how to reach it. ``password`` is a ``SecretStr``, so reprs never show it."""

    host: str
    port: int
    security: Security = "none"
    username: str | None = None
    password: SecretStr | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class MailUrl:
    backend: str  # smtp, console, file or memory
    strategy: Strategy = "single"
    upstreams: tuple[Upstream, ...] = ()
    file_path: Path | None = None


def _smtp_upstream(text: str) -> Upstream:
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port must be a number from 1 to 65535") from None
    if not parts.hostname:
        raise ValueError(f"the {scheme}:// URL has no host name")
    query = {key.lower(): values[-1].lower() for key, values in parse_qs(parts.query).items()}
    unknown = sorted(set(query) - {"tls"})
    if unknown:
        raise ValueError(f"unknown URL parameter {unknown[0]!r}; only tls=starttls|none is understood")
    if scheme == "smtps":
        if "tls" in query:
            raise ValueError("smtps:// always uses implicit TLS; drop the tls= parameter")
        security: Security = "ssl"
        port = port or 465
    else:
        port = port or 25
        # Port 587 is the submission port, where STARTTLS is expected: require it unless told otherwise.
        security = query.get("tls", "starttls" if port == 587 else "none")  # type: ignore[assignment]
        if security not in ("starttls", "none"):
            raise ValueError("tls= must be starttls or none (use smtps:// for implicit TLS)")
    username = unquote(parts.username) if parts.username else None
    password = SecretStr(unquote(parts.password)) if parts.password is not None else None
    return Upstream(parts.hostname, port, security, username, password)


def parse_mail_url(text: str) -> MailUrl:
    """Parse ``text``; raise ``ValueError`` with a reason that never contains the URL itself."""
    text = text.strip()
    group = _GROUP.match(text)
    if group:
        members = group.group(2).split()
        if not members:
            raise ValueError(f"{group.group(1)}() lists no upstreams")
        for member in members:
            if urlsplit(member).scheme.lower() not in ("smtp", "smtps"):
                raise ValueError(f"{group.group(1)}() may only list smtp:// and smtps:// URLs")
        upstreams = tuple(_smtp_upstream(member) for member in members)
        return MailUrl("smtp", group.group(1), upstreams)  # type: ignore[arg-type]
    if "://" not in text:
        raise ValueError(f"it is not a URL; use one of {_SCHEMES}")
    scheme = urlsplit(text).scheme.lower()
    if scheme in ("smtp", "smtps"):
        return MailUrl("smtp", "single", (_smtp_upstream(text),))
    if scheme in ("console", "memory"):
        return MailUrl(scheme)
    if scheme == "file":
        parts = urlsplit(text)
        path = unquote(parts.netloc + parts.path)
        if not path:
            raise ValueError("file:// needs a directory, e.g. file:///var/spool/gateway")
        return MailUrl("file", file_path=Path(path))
    raise ValueError(f"unknown scheme {scheme!r}; use one of {_SCHEMES}")
