"""The inbox page with 10,000 kept messages, measured in Debian's Chromium: how long until the first page of the
list is painted, and how long search takes to answer once typing stops. Not a test: it prints the figures.

    .venv/bin/python -m benchmarks.inbox_browser [--messages 10000] [--rounds 3]

First paint is the browser's first-contentful-paint and the moment the first row is in the DOM, both from the
start of navigation. A search is timed from the input event of the last keystroke to the list showing its answer,
so it includes the page's 100 ms pause in typing; the list request alone is reported too. "Cold" is the first
search after start-up (the outbox reads every kept message once), "warm" the later ones.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

from mail_gateway import MailGateway, create_app
from mail_gateway.settings import GatewaySettings

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
# Records when the list first holds a row and when it last changed, in the page's own clock.
OBSERVER = """{
  window.listChanges = [];
  new MutationObserver(() => {
    const list = document.getElementById("messages");
    if (list && list.children.length) window.listChanges.push(performance.now());
  }).observe(document, {subtree: true, childList: true});
}"""
SEARCHES = ["to:user42@example.com", "subject:\"bulk 12\"", "from:sender7", "-to:user1 bulk", "body 9999"]


def filled_app(count: int) -> Any:
    app = create_app(GatewaySettings(_env_file=None, gateway_env="testing", mail_backend="memory",
                                     mail_memory_max_messages=count))
    backend = MailGateway.state(app).backend
    for n in range(count):
        data = (f"From: sender{n}@example.com\r\nTo: user{n % 100}@example.com\r\nSubject: Bulk {n}\r\n"
                f"Message-ID: <bulk{n}@example.com>\r\nDate: Mon, 1 Jun 2026 10:00:00 +0000\r\n\r\nBody {n}\r\n")
        backend.keep(data.encode(), (f"user{n % 100}@example.com",), f"sender{n}@example.com")
    return app


@contextmanager
def served(app: Any) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def search_ms(page: Any, text: str) -> float:
    """From the last keystroke's input event to the list's answer (the range line changes or an error shows)."""
    before = page.locator("#range").text_content()
    started = page.evaluate("""(text) => {
        const input = document.getElementById("search");
        input.value = text;
        window.searchStarted = performance.now();
        input.dispatchEvent(new Event("input", {bubbles: true}));
        return window.searchStarted;
    }""", text)
    page.wait_for_function("""([before]) => window.listChanges.some(t => t > window.searchStarted)
        || document.getElementById("range").textContent !== before
        || document.getElementById("search-error").textContent !== "" """, arg=[before], timeout=300_000)
    answered = page.evaluate("Math.max(...window.listChanges)")
    return max(answered - started, 0.0)


def last_request_ms(page: Any) -> float:
    """The duration of the last list request, as the browser's resource timing saw it (the gateway's share)."""
    return page.evaluate("""performance.getEntriesByType("resource")
        .filter(e => e.name.includes("/outbox/messages?")).at(-1).duration""")


def measure(url: str, rounds: int) -> dict[str, Any]:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.add_init_script(OBSERVER)
            page.goto(f"{url}/outbox")
            page.wait_for_function("() => window.listChanges.length > 0")
            first_row = page.evaluate("window.listChanges[0]")
            paint = page.evaluate("(performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime")
            cold = search_ms(page, SEARCHES[0])
            warm, requests = [], []
            for _ in range(rounds):
                for text in SEARCHES[1:] + SEARCHES[:1]:
                    warm.append(search_ms(page, text))
                    requests.append(last_request_ms(page))
        finally:
            browser.close()
    return {"first_contentful_paint_ms": paint, "first_row_ms": first_row, "cold_search_ms": cold,
            "warm_search_median_ms": statistics.median(warm), "warm_search_max_ms": max(warm),
            "warm_request_median_ms": statistics.median(requests)}


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line a request would bury the figures
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3, help="times each warm search is repeated")
    options = parser.parse_args()
    with served(filled_app(options.messages)) as url:
        figures = measure(url, options.rounds)
    print(f"inbox page, {options.messages} kept messages, Chromium 1280x860")
    for name, value in figures.items():
        print(f"  {name:28} {value:8.1f}")


if __name__ == "__main__":
    main()
