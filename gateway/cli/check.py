"""``mail-gateway check``: validate the configuration, check the store (queued delivery or a shared store), say
whether DNS publishes each DKIM key (``cli/dkim.py``) and, for SMTP, show what each upstream offers.

It connects, reads the banner, says EHLO, does STARTTLS and logs in exactly as delivery would, and
reports what it found, without sending mail. Any failure exits non-zero with the reason on one line.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

import click

from mail_gateway.assembly import build_sender
from mail_gateway.backends.base import EmailBackend
from mail_gateway.backends.smtp import SmtpBackend, transaction
from mail_gateway.cli.common import configured
from mail_gateway.errors import ConfigurationError, DeliveryError, StoreUnavailableError
from mail_gateway.extras import needs_extra
from mail_gateway.queue.setup import require_store
from mail_gateway.settings import GatewaySettings, load_settings
from mail_gateway.store.database import Store

if TYPE_CHECKING:
    from mail_gateway.sending.dkim_keys import DkimKey


def _extensions(features: dict[str, str]) -> str:
    shown = []
    for name in sorted(features):
        value = features[name].strip()
        shown.append(f"{name.upper()} {value}".strip())
    return ", ".join(shown) or "none (HELO only)"


def _report(found: dict[str, Any]) -> None:
    click.echo(f"  banner:      {found.get('banner', '-')}")
    if "extensions" in found:
        click.echo(f"  extensions:  {_extensions(found['extensions'])}")
    if "extensions_after_tls" in found:
        click.echo(f"  after TLS:   {_extensions(found['extensions_after_tls'])}")
    if "tls_version" in found:
        click.echo(f"  TLS:         {found['tls_version']}, certificate {found.get('certificate_subject') or '-'}")
    else:
        click.echo("  TLS:         not used")
    click.echo(f"  login:       {found.get('login', 'not configured')}")


def dns_server_address(value: str) -> tuple[str, int]:
    """``192.0.2.1``, ``192.0.2.1:5353``, ``::1`` or ``[::1]:5353`` -> (address, port); ``ValueError``."""
    host, port = value, "53"
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest.removeprefix(":") or "53"
    elif value.count(":") == 1:
        host, port = value.split(":")
    ipaddress.ip_address(host)  # the resolver asks an address, never a name it would have to look up first
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{port!r} is no port")
    return host, int(port)


def _dkim_keys(settings: GatewaySettings) -> tuple[DkimKey, ...]:
    """The keys of GATEWAY_DKIM_KEYS, read and checked (their module needs the dkim extra, loaded only then)."""
    if not settings.dkim.dkim_key_sources:
        return ()
    with needs_extra("GATEWAY_DKIM_KEYS", variable="GATEWAY_DKIM_KEYS"):
        from mail_gateway.sending.dkim_keys import load_keys
    return load_keys(settings.dkim.dkim_key_sources)


def _built_backend(settings: GatewaySettings) -> EmailBackend:
    """The backend of a sender built as every process builds one (``build_sender``): what ``serve``, ``worker``
    or ``smtpd`` would refuse at start-up (a default sender that is no address, a folder of templates that is
    not one, GATEWAY_CHAOS...) is refused here too, not reported ok. Its store is not opened: ``_check_store``
    tries that and reports it on its own line."""
    require_store(settings)
    store = Store(settings.store_url, pool_size=1)
    try:
        sender, _ = build_sender(settings, store=store)
    finally:
        store.close()
    return sender.backend


def _check_store(settings: GatewaySettings, failures: list[str]) -> None:
    """The store answers a write transaction and has this version's schema (its password never shown)."""
    from mail_gateway.store.engine import head_revision

    store = Store(settings.store_url, pool_size=1)
    try:
        store.open().check()
        click.echo(f"store {store.describe()}: ok, schema at revision {head_revision()}")
    except StoreUnavailableError as exc:  # said once, in the closing error line
        failures.append(f"store {store.describe()}: {exc}")
    finally:
        store.close()


def _dns_server(context: click.Context, parameter: click.Parameter, value: str | None) -> tuple[str, int] | None:
    try:
        return None if value is None else dns_server_address(value)
    except ValueError as exc:
        raise click.BadParameter(f"{exc}; give an IP address, with :PORT if not 53") from None


@click.command()
@click.option("--dns-server", callback=_dns_server, metavar="ADDRESS[:PORT]",
              help="Look the DKIM keys up at this DNS server (e.g. the domain's own) instead of the system's.")
def check(dns_server: tuple[str, int] | None) -> None:
    """Validate the configuration, look the DKIM keys up in DNS and test the SMTP connection(s), without
    sending mail."""
    try:
        settings = load_settings()
        backend = _built_backend(settings)
        keys = _dkim_keys(settings)
    except ConfigurationError as exc:
        raise click.ClickException(f"configuration error: {' '.join(str(exc).split())}") from exc
    click.echo(f"configuration ok: backend {settings.backend_name} ({settings.gateway_env})")
    failures: list[str] = []
    if settings.queued or settings.shared_store:
        configured(lambda: _check_store(settings, failures))
    if keys:
        from mail_gateway.cli.dkim import check_published

        check_published(keys, dns_server, failures)
    if not isinstance(backend, SmtpBackend):
        if failures:
            raise click.ClickException("; ".join(failures))
        return
    for member in backend.upstreams.members:
        upstream = member.upstream
        click.echo(f"{upstream.name} ({upstream.security}):")
        found: dict[str, Any] = {}
        try:
            conn = backend.connect(upstream, found)
        except DeliveryError as exc:
            _report(found)
            failures.append(" ".join(str(exc).split()))
            continue
        transaction.quit_quietly(conn)
        _report(found)
    backend.close()
    if failures:
        raise click.ClickException("; ".join(failures))
    click.echo("ok")
