"""Shared parts of the inbox page's browser tests: Debian's Chromium through Playwright, the gateway in a real
HTTP server on a free loopback port, and helpers that put mail in it and read the page back."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright is in the dev extra: make test")
expect = playwright_api.expect

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PAGE_TITLE = "Outbox · mail-gateway"
WIDTHS = {"phone": (360, 740), "tablet": (768, 1000), "desktop": (1280, 860)}
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "images" / "inbox"
AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
PATIENCE_MS = 20_000  # a shared, busy machine: patience, never sleeps


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        if found := shutil.which(name):
            return found
    return None


@contextmanager
def launched_chromium() -> Iterator[Any]:
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium on this machine: `make test` installs it with apt-get install chromium")
    with playwright_api.sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        except playwright_api.Error as exc:
            pytest.skip(f"Chromium at {executable} did not start: {exc.message.splitlines()[0]}")
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Served:
    """The gateway in a real server, and the paths of the requests that reached it (a blocked load never does)."""

    app: Flask
    url: str
    paths: list[str] = field(default_factory=list)

    def count(self, prefix: str) -> int:
        return sum(1 for path in list(self.paths) if path.startswith(prefix))


@contextmanager
def running(wsgi_app: Callable[..., Any], name: str) -> Iterator[int]:
    """``wsgi_app`` in a real server on a loopback port, for the block: its port."""
    server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
    server.daemon_threads = True  # an open event stream must not hold the server's shutdown
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@contextmanager
def serving(app: Flask) -> Iterator[Served]:
    served = Served(app, "")

    def recording(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        query = environ.get("QUERY_STRING", "")
        served.paths.append(environ["PATH_INFO"] + (f"?{query}" if query else ""))
        return app(environ, start_response)

    with running(recording, "gateway-under-test") as port:
        served.url = f"http://127.0.0.1:{port}"
        yield served


@contextmanager
def other_site(html: str) -> Iterator[str]:
    """A page of another site than the gateway's (``localhost`` where the gateway is ``127.0.0.1``): its URL."""
    def answer(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [html.encode("utf-8")]

    with running(answer, "another-site") as port:
        yield f"http://localhost:{port}/"


@contextmanager
def browser_page(browser: Any, width: str = "desktop", **options: Any) -> Iterator[Any]:
    viewport_width, height = WIDTHS[width]
    context = browser.new_context(viewport={"width": viewport_width, "height": height}, **options)
    context.set_default_timeout(PATIENCE_MS)
    expect.set_options(timeout=PATIENCE_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"the page's scripts failed: {errors}"


def send(app: Flask, headers: dict[str, str] | None = None, **fields: Any) -> str:
    """Send through the gateway's API; the kept message's id."""
    body = {"from": "Ana Lima <ana@example.com>", "to": ["bo@example.com"], "subject": "Hello",
            "text": "Hi there", **fields}
    client = app.test_client()
    response = client.post("/v1/messages", json=body, headers=headers or {})
    assert response.status_code == 202, response.json
    return client.get("/v1/outbox", headers=headers or {}).json["messages"][0]["id"]


def overflows(page: Any) -> int:
    """How many CSS pixels the document is wider than the viewport (0: no horizontal scrolling)."""
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci --prefix tests` (make test does)")
    # Evaluated through the DevTools protocol, which the page's CSP (no inline script) does not govern; the
    # message's sandboxed frame is left out: it is the sender's HTML, not the page.
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;true")
    found = page.evaluate("async () => (await axe.run(document, {iframes: false, resultTypes: ['violations']}))"
                          ".violations"
                          ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))")
    return [v for v in found if v["impact"] in ("serious", "critical")]


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), animations="disabled", caret="hide")
