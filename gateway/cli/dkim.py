"""``mail-gateway dkim keygen``, and the DKIM part of ``mail-gateway check``: whether DNS publishes each
configured selector's public key.

Where DNS cannot answer (no resolver, no route to the domain's servers, or a resolver cut off from the internet
that knows no domain at all), ``check`` says it could not check and does not fail for it: a gateway may run where
it cannot see public DNS. A record that is missing or holds another key fails the check, as receivers would then
fail every signature.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
import dns.exception
import dns.resolver
from dkim.util import InvalidTagValueList, parse_tag_value

from mail_gateway.sending.dkim_keys import ED25519, RSA, DkimKey, key_file_bytes, new_key
from mail_gateway.settings.dkim import selector_name, signing_domain

LOOKUP_SECONDS = 5.0
_UNREACHABLE = (dns.exception.Timeout, dns.resolver.NoNameservers, dns.resolver.NoResolverConfiguration, OSError)


class Unreachable(Exception):
    """DNS gave no answer that says whether the record exists."""


def resolver(server: tuple[str, int] | None) -> dns.resolver.Resolver:
    """The system's resolver, or one that asks ``server`` alone; ``Unreachable`` when there is none."""
    try:
        found = dns.resolver.Resolver(configure=server is None)
    except dns.resolver.NoResolverConfiguration as exc:
        raise Unreachable(f"no DNS resolver is configured ({exc})") from None
    if server is not None:
        found.nameservers, found.port = [server[0]], server[1]
    found.lifetime = LOOKUP_SECONDS
    return found


def _lookup(ask: dns.resolver.Resolver, name: str, kind: str) -> list[bytes] | None:
    """The records of ``kind`` at ``name``; None when the name does not exist or has none of them."""
    try:
        answer = ask.resolve(name + ".", kind, search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return None
    except _UNREACHABLE as exc:
        raise Unreachable(" ".join(str(exc).split()) or type(exc).__name__) from None
    return [b"".join(getattr(record, "strings", ())) for record in answer]


def _domain_known(ask: dns.resolver.Resolver, domain: str) -> bool:
    try:
        ask.resolve(domain + ".", "SOA", search=False)
    except dns.resolver.NXDOMAIN:
        return False
    except dns.resolver.NoAnswer:  # a name below a zone's apex: it exists
        return True
    except _UNREACHABLE as exc:
        raise Unreachable(" ".join(str(exc).split()) or type(exc).__name__) from None
    return True


def _publishes(record: bytes, key: DkimKey) -> bool:
    try:
        tags = parse_tag_value(record)
    except InvalidTagValueList:
        return False
    kind = tags.get(b"k", b"rsa").strip().decode("ascii", "replace")
    published = b"".join(tags.get(b"p", b"").split()).decode("ascii", "replace")
    return kind == ("ed25519" if key.algorithm == ED25519 else "rsa") and published == key.public_value


def published_state(ask: dns.resolver.Resolver, key: DkimKey) -> tuple[bool, str]:
    """(whether it fails the check, what to say) for one selector."""
    try:
        records = _lookup(ask, key.record_name, "TXT")
        if records is None and not _domain_known(ask, key.domain):
            raise Unreachable(f"DNS does not know {key.domain} at all, so it cannot see the internet")
    except Unreachable as exc:
        return False, f"could not check ({exc})"
    if records and any(_publishes(record, key) for record in records):
        return False, "the published key matches"
    problem = "DNS publishes another key" if records else "no DKIM record is published"
    return True, f"{problem}; publish: {key.zone_entry}"


def check_published(keys: tuple[DkimKey, ...], server: tuple[str, int] | None, failures: list[str]) -> None:
    """Say, for each key, whether DNS publishes it; add what fails to ``failures``."""
    if not keys:
        return
    try:
        ask: dns.resolver.Resolver | None = resolver(server)
    except Unreachable as exc:
        ask, reason = None, str(exc)
    for key in keys:
        failed, said = published_state(ask, key) if ask is not None else (False, f"could not check ({reason})")
        click.echo(f"DKIM {key.record_name} ({key.algorithm}): {said}")
        if failed:
            failures.append(f"DKIM {key.record_name}: {said.partition(';')[0]}")


@click.group()
def dkim() -> None:
    """DKIM signing (GATEWAY_DKIM_KEYS): make a key and the DNS record that publishes it."""


@dkim.command()
@click.argument("domain")
@click.argument("selector")
@click.option("--ed25519", "ed25519_key", is_flag=True, help="An Ed25519 key (ed25519-sha256) instead of RSA 2048.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="The key file to write (default: SELECTOR.DOMAIN.key in the current directory).")
def keygen(domain: str, selector: str, ed25519_key: bool, out: Path | None) -> None:
    """Write a new private key, readable by its owner only, and print the DNS TXT record that publishes it."""
    try:
        domain = signing_domain(domain)
    except ValueError:
        raise click.BadParameter(f"{domain!r} has no IDNA 2008 form; give a domain such as example.com",
                                 param_hint="DOMAIN") from None
    try:
        selector = selector_name(selector)
    except ValueError as exc:
        raise click.BadParameter(f"{selector!r}: {exc}", param_hint="SELECTOR") from None
    path = out or Path(f"{selector}.{domain}.key")
    key = DkimKey(domain, selector, ED25519 if ed25519_key else RSA, new_key(ed25519_key))
    try:
        # Created with its final mode, never overwriting: an existing key may be the one DNS publishes.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise click.ClickException(f"{path} exists; keygen never overwrites a key: choose another --out, or "
                                   "remove it") from None
    except OSError as exc:
        raise click.ClickException(f"{path} cannot be written ({exc.strerror}); choose another --out") from None
    with os.fdopen(descriptor, "wb") as file:
        file.write(key_file_bytes(key.private))
    click.echo(key.zone_entry)
    click.echo(f"wrote the private key to {path} (mode 0600); publish the record above, then add "
               f"{domain}:{selector}:{path.resolve()} to GATEWAY_DKIM_KEYS", err=True)
