"""The link check fetches public addresses only unless GATEWAY_OUTBOX_ALLOW_INTERNAL_LINKS is true: a kept message's
links are its sender's to write, and fetching loopback, private or link-local ones would let anyone who can send
mail probe the gateway's own network (server-side request forgery)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mail_gateway import create_app
from mail_gateway.outbox.checks import lookup
from mail_gateway.outbox.checks.addresses import why_internal
from mail_gateway.outbox.checks.lookup import LOOKUPS_KEY, NameLookups

ADVICE = "set GATEWAY_OUTBOX_ALLOW_INTERNAL_LINKS=true to check links to your own network"


class Recorded(BaseHTTPRequestHandler):
    """Answers 200 and records each path asked for; /away redirects to the class's ``away``."""

    seen: list[str]
    away: str = ""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.seen.append(self.path)
        self.send_response(302 if self.path == "/away" else 200)
        if self.path == "/away":
            self.send_header("Location", self.away)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def serve(host: str, **attributes: object) -> tuple[ThreadingHTTPServer, list[str]]:
    seen: list[str] = []
    server = ThreadingHTTPServer((host, 0), type("Handler", (Recorded,), {"seen": seen, **attributes}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


@pytest.fixture
def site() -> Iterator[tuple[int, list[str]]]:
    server, seen = serve("127.0.0.1")
    yield server.server_address[1], seen
    server.shutdown()
    server.server_close()


def checked(app, html: str) -> dict[str, dict]:
    client = app.test_client()
    body = {"from": "app@example.com", "to": ["friend@example.com"], "subject": "Links", "html": html}
    assert client.post("/v1/messages", json=body).status_code == 202
    message_id = client.get("/v1/outbox").json["messages"][0]["id"]
    answer = client.post(f"/v1/outbox/{message_id}/links/check")
    assert answer.status_code == 200
    return {link["url"]: link for link in answer.json["links"]}


def test_links_to_loopback_are_not_fetched_by_default_and_the_error_names_the_setting(make_settings, site) -> None:
    port, seen = site
    app = create_app(make_settings(mail_backend="memory"))
    results = checked(app, f'<a href="http://127.0.0.1:{port}/a">a</a><a href="http://[::1]:{port}/b">b</a>')
    first, second = results[f"http://127.0.0.1:{port}/a"], results[f"http://[::1]:{port}/b"]
    assert first["status"] is None and first["error"] == f"not fetched: 127.0.0.1 is a loopback address; {ADVICE}"
    assert second["status"] is None and second["error"].startswith("not fetched: ::1 is a loopback address")
    assert seen == []


def test_a_name_resolving_to_an_internal_address_is_not_fetched(make_settings, site) -> None:
    port, seen = site
    app = create_app(make_settings(mail_backend="memory"))
    app.extensions[LOOKUPS_KEY] = NameLookups(lambda host, port, **kw: socket.getaddrinfo("127.0.0.1", port, **kw))
    results = checked(app, f'<a href="http://intranet.example:{port}/x">x</a>')
    error = results[f"http://intranet.example:{port}/x"]["error"]
    assert error == f"not fetched: intranet.example (127.0.0.1) is a loopback address; {ADVICE}" and seen == []


def test_a_redirect_to_an_internal_address_is_not_followed(make_settings, site, monkeypatch) -> None:
    port, seen = site
    # 127.0.0.2 stands for a public server here (the tests reach loopback alone); 127.0.0.1 stays internal.
    monkeypatch.setattr(lookup, "why_internal", lambda address: None if address == "127.0.0.2" else
                        why_internal(address))
    public, public_seen = serve("127.0.0.2", away=f"http://127.0.0.1:{port}/inside")
    try:
        app = create_app(make_settings(mail_backend="memory"))
        url = f"http://127.0.0.2:{public.server_address[1]}/away"
        result = checked(app, f'<a href="{url}">x</a>')[url]
    finally:
        public.shutdown()
        public.server_close()
    assert public_seen == ["/away"] and seen == []
    assert result["redirects"] == [f"http://127.0.0.1:{port}/inside"] and result["status"] is None
    assert result["error"].startswith("not fetched: 127.0.0.1 is a loopback address")


def test_with_the_setting_internal_links_are_fetched(make_settings, site) -> None:
    port, seen = site
    app = create_app(make_settings(mail_backend="memory", gateway_outbox_allow_internal_links=True))
    result = checked(app, f'<a href="http://127.0.0.1:{port}/a">a</a>')[f"http://127.0.0.1:{port}/a"]
    assert (result["status"], result["error"], seen) == (200, None, ["/a"])


@pytest.mark.parametrize(("address", "kind"), [
    ("127.0.0.1", "a loopback address"), ("::1", "a loopback address"),
    ("169.254.169.254", "a link-local address"), ("fe80::1%1", "a link-local address"),
    ("10.0.0.1", "a private address"), ("192.168.1.1", "a private address"), ("fd00::1", "a private address"),
    ("0.0.0.0", "a private address"), ("100.64.0.1", "not a public address"),
    ("224.0.1.1", "a multicast address"), ("ff02::1", "a multicast address"),
    # IPv6 forms that carry an IPv4 address are judged by it: IPv4-mapped, 6to4 and NAT64 (CVE-2026-55187).
    ("::ffff:127.0.0.1", "a loopback address"), ("2002:7f00:1::1", "a loopback address"),
    ("64:ff9b::a9fe:a9fe", "a link-local address"), ("64:ff9b:1::a00:1", "a private address"),
    ("8.8.8.8", None), ("2606:4700::1111", None), ("::ffff:8.8.8.8", None), ("64:ff9b::808:808", None),
])
def test_which_addresses_are_internal(address: str, kind: str | None) -> None:
    assert why_internal(address) == kind
