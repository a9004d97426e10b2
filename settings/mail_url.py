"""Parse ``MAIL_URL``: one string that chooses the backend and, for SMTP, one or several upstreams.

The forms follow Symfony Mailer's DSNs (``smtp://user:pass@host:587``, ``failover(a b)``,
``roundrobin(a b)``), which operators already know. No library parses that grammar, so it is written here
on top of ``urllib.parse``. Error messages never repeat the URL or any part of it: it may carry a password.

Parsing is strict: a path, query or fragment a scheme does not define is an error, not ignored. An unencoded
``/``, ``?`` or ``#`` in a password ends the authority there, so ``smtp://user:1234/secret@host`` would
otherwise connect to host ``user`` on port 1234 — and show the password's first part as that port wherever
the upstream is named.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import SplitResult, parse_qs, unquote

from pydantic import SecretStr

from mail_gateway.settings.hosts import check_host, split_url
from mail_gateway.settings.registration import find_scheme, registrations

Security = Literal["none", "starttls", "ssl"]
Strategy = Literal["single", "failover", "roundrobin"]

_GROUP = re.compile(r"^(failover|roundrobin)\((.*)\)$", re.DOTALL)
# smtplib encodes the AUTH exchange as ASCII: any other character raised UnicodeEncodeError at each send.
NOT_ASCII_LOGIN = ("holds a character that is not ASCII, which Python's smtplib cannot send in an SMTP login; use "
                   "ASCII characters only")
_ENCODE = ("; if it is part of the user name or password, percent-encode the reserved characters there "
           "('/' as %2F, '?' as %3F, '#' as %23, '@' as %40, ':' as %3A)")


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
    backend: str  # a registered backend's name: smtp, console, file, memory or a third-party one
    strategy: Strategy = "single"
    upstreams: tuple[Upstream, ...] = ()
    file_path: Path | None = None
    # A third-party backend's own settings that the URL gives (its registration's url_values). Any may be secret:
    # text is kept as a SecretStr, which the settings' model_dump and its JSON show masked, as they show a password.
    options: tuple[tuple[str, Any], ...] = field(default=(), repr=False)

    @property
    def given(self) -> dict[str, Any]:
        """The backend's settings as the URL gave them, for its settings model to read."""
        return {name: value.get_secret_value() if isinstance(value, SecretStr) else value
                for name, value in self.options}


def _schemes() -> str:
    """The schemes to name in an error: the registered backends' (the installed packages' too)."""
    names = [f"{scheme}://" for registration in registrations() for scheme in registration.schemes]
    return ", ".join(names) + ", failover(...) or roundrobin(...)"


def _port(parts: SplitResult) -> int | None:
    """The URL's port. urllib's own error would quote what stands there: with an unencoded '/' in a password, its
    first part."""
    try:
        return parts.port
    except ValueError:
        raise ValueError(f"the port must be a number from 1 to 65535{_ENCODE}") from None


def _registered_scheme(text: str, scheme: str) -> MailUrl:
    """The URL of a backend registered with its own scheme (mail_gateway.settings.registration)."""
    registration = find_scheme(scheme)
    if registration is None:
        raise ValueError(f"unknown scheme {scheme!r}; use one of {_schemes()}")
    if registration.url_values is None:
        if text.split("://", 1)[1]:
            raise ValueError(f"{scheme}:// takes nothing after the '//'; use {scheme}:// alone")
        return MailUrl(registration.name)
    parts = split_url(text)
    _port(parts)  # read before the backend reads it
    try:
        values = registration.url_values(parts)
    except ValueError:
        raise
    except Exception:  # the backend's parser failed on this URL; what it says might repeat the URL
        raise ValueError(f"the {scheme}:// URL cannot be read by the {registration.name} backend") from None
    hidden = {name: SecretStr(value) if isinstance(value, str) else value for name, value in dict(values).items()}
    return MailUrl(registration.name, options=tuple(hidden.items()))


def _refuse_undefined_parts(text: str, scheme: str, *, path: bool = False, query: bool = False) -> None:
    """A part of the URL the scheme does not define is an error naming that part (never showing it)."""
    parts = split_url(text)
    if "#" in text:
        raise ValueError(f"the {scheme}:// URL has a fragment ('#...'), which {scheme}:// does not define{_ENCODE}")
    if "?" in text and not query:
        raise ValueError(f"the {scheme}:// URL has a query ('?...'), which {scheme}:// does not define{_ENCODE}")
    if parts.path not in ("", "/") and not path:
        raise ValueError(f"the {scheme}:// URL has a path ('/...'), which {scheme}:// does not define{_ENCODE}")


def _tls_parameter(query_text: str) -> dict[str, str]:
    try:
        query = parse_qs(query_text, keep_blank_values=True, strict_parsing=bool(query_text))
    except ValueError:
        query = {"": []}
    if set(query) - {"tls"} or any(len(values) != 1 for values in query.values()):
        raise ValueError(f"unknown URL parameter: the query may only be ?tls=starttls or ?tls=none{_ENCODE}")
    return {key: values[0].lower() for key, values in query.items()}


def _smtp_upstream(text: str) -> Upstream:
    parts = split_url(text)
    scheme = parts.scheme.lower()
    _refuse_undefined_parts(text, scheme, query=True)
    port = _port(parts)
    if not parts.hostname:
        raise ValueError(f"the {scheme}:// URL has no host name")
    if port == 0 or parts.netloc.endswith(":"):  # urlsplit reads both as no port, which meant 25 or 465
        raise ValueError("the port is empty or 0; give a port from 1 to 65535, or none for the scheme's own")
    try:
        check_host(parts.hostname)
    except ValueError as exc:
        raise ValueError(f"the {scheme}:// URL: {exc}") from None
    query = _tls_parameter(parts.query)
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
    if not (username or "").isascii() or not (password.get_secret_value() if password else "").isascii():
        raise ValueError(f"its user name or password {NOT_ASCII_LOGIN}")
    if password is not None and password.get_secret_value() and not username:
        # The backend logs in only with a user name: the password would be dropped and mail sent without AUTH.
        raise ValueError(f"it gives a password without a user name; write {scheme}://user:password@host, or remove "
                         "the password to send without logging in")
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
            if split_url(member).scheme.lower() not in ("smtp", "smtps"):
                raise ValueError(f"{group.group(1)}() may only list smtp:// and smtps:// URLs")
        upstreams = tuple(_smtp_upstream(member) for member in members)
        # One server twice is one server: failover would retry the upstream that just failed, and roundrobin
        # weigh it double, both sharing one rest after a failure.
        names = [upstream.name for upstream in upstreams]
        twice = next((name for name in names if names.count(name) > 1), None)
        if twice is not None:
            raise ValueError(f"{group.group(1)}() lists the upstream {twice} twice; list each server once")
        return MailUrl("smtp", group.group(1), upstreams)  # type: ignore[arg-type]
    if "://" not in text:
        raise ValueError(f"it is not a URL; use one of {_schemes()}")
    scheme = split_url(text).scheme.lower()
    if scheme in ("smtp", "smtps"):
        return MailUrl("smtp", "single", (_smtp_upstream(text),))
    if scheme in ("console", "memory"):
        if text.split("://", 1)[1]:
            raise ValueError(f"{scheme}:// takes nothing after the '//'; use {scheme}:// alone")
        return MailUrl(scheme)
    if scheme == "file":
        _refuse_undefined_parts(text, scheme, path=True)
        parts = split_url(text)
        path = unquote(parts.netloc + parts.path)
        if not path:
            raise ValueError("file:// needs a directory, e.g. file:///var/spool/gateway")
        return MailUrl("file", file_path=Path(path))
    return _registered_scheme(text, scheme)
