"""The /outbox page in a real headless Chromium (Playwright, pointed at the system's Chromium).

The gateway runs in a real HTTP server on a free loopback port with the memory backend; messages are sent
through the same app, and the page must show them without being reloaded.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask_mailman import EmailMultiAlternatives
from werkzeug.serving import make_server

from mail_gateway import MailGateway, create_app

playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright is in the dev extra: make test")

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PAGE_TITLE = "Outbox · mail-gateway"
HOSTILE_SUBJECT = "<script>document.title='owned'</script>Hello"


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        if found := shutil.which(name):
            return found
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium on this machine: `make test` installs it with apt-get install chromium")
    with playwright_api.sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        except playwright_api.Error as exc:
            pytest.skip(f"Chromium at {executable} did not start: {exc.message.splitlines()[0]}")
        yield launched
        launched.close()


@pytest.fixture
def app(make_settings) -> Flask:
    return create_app(make_settings(mail_backend="memory"))


@pytest.fixture
def served_paths() -> list[str]:
    return []


@pytest.fixture
def base_url(app: Flask, served_paths: list[str]) -> Iterator[str]:
    def recording(environ, start_response):  # what reached the server, blocked requests never do
        served_paths.append(environ["PATH_INFO"])
        return app(environ, start_response)

    server = make_server("127.0.0.1", 0, recording, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="gateway-under-test", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context()
    context.set_default_timeout(15_000)
    playwright_api.expect.set_options(timeout=15_000)  # a shared, busy machine: patience, not sleeps
    opened = context.new_page()
    yield opened
    context.close()


def send(app: Flask, **fields) -> None:
    body = {"from": "App <app@example.com>", "to": ["friend@example.com"], "subject": "Hello", "text": "Hi",
            **fields}
    response = app.test_client().post("/v1/messages", json=body)
    assert response.status_code == 202, response.json


def test_messages_appear_open_render_sandboxed_and_clear(app, base_url, served_paths, page) -> None:
    expect = playwright_api.expect
    page.goto(f"{base_url}/outbox")
    expect(page).to_have_title(PAGE_TITLE)
    expect(page.locator("#empty")).to_be_visible()
    page.evaluate("window.notReloaded = true")

    html = ("<script>document.documentElement.dataset.ran = 'yes'; parent.document.title = 'owned';</script>"
            f"<img id='tracker' src='{base_url}/tracker.gif'>"
            "<p id='greeting' style='color: rgb(0, 128, 0)'>Hello <b>HTML</b></p>")
    send(app, subject=HOSTILE_SUBJECT, text="<script>document.title='owned'</script> in the text", html=html)

    links = page.locator("#messages a")
    expect(links).to_have_count(1)
    expect(links.first.locator(".subject")).to_have_text(HOSTILE_SUBJECT)  # shown as text, not run
    expect(page.locator("#empty")).to_be_hidden()
    expect(page.locator("#count")).to_have_text("1 message")
    assert page.evaluate("window.notReloaded") is True, "the page was reloaded to show the new message"

    links.first.click()
    expect(page.locator("#detail-subject")).to_have_text(HOSTILE_SUBJECT)
    expect(page.locator("#text-part")).to_have_text("<script>document.title='owned'</script> in the text")
    iframe = page.locator("iframe#html-part")
    expect(iframe).to_have_attribute("sandbox", "")
    frame = page.frame_locator("iframe#html-part")
    expect(frame.locator("#greeting b")).to_have_text("HTML")  # the HTML part is rendered...
    expect(frame.locator("#greeting")).to_have_css("color", "rgb(0, 128, 0)")  # ...with its inline style
    # ...and the script before it, parsed first, did not run: not in the message's frame, not in the page.
    expect(frame.locator("html")).not_to_have_attribute("data-ran", "yes")
    expect(page).to_have_title(PAGE_TITLE)
    # A frame's load event waits for its images, so once it fired an allowed image would have been fetched.
    iframe.element_handle().content_frame().wait_for_load_state("load")
    assert f"/outbox/messages/{app.test_client().get('/v1/outbox').json['messages'][0]['id']}/html" in served_paths
    assert "/tracker.gif" not in served_paths, "the message's HTML loaded a remote image"

    page.evaluate("window.notReloaded = true")
    send(app, subject="Second")
    expect(links).to_have_count(2)
    expect(links.first.locator(".subject")).to_have_text("Second")  # newest first
    assert page.evaluate("window.notReloaded") is True

    page.locator("#clear").click()
    expect(links).to_have_count(0)
    expect(page.locator("#empty")).to_be_visible()
    expect(page.locator("#detail")).to_be_hidden()
    expect(page.locator("#count")).to_have_text("0 messages")
    assert MailGateway.state(app).backend.messages == []


def test_an_attachment_downloads_from_the_message_page(app, base_url, page, tmp_path: Path) -> None:
    message = EmailMultiAlternatives("Report", "Attached.", "app@example.com", ["boss@example.com"])
    message.attach("report.csv", "a,b\n1,2\n", "text/csv")
    message.encoding = "utf-8"
    with app.app_context():
        MailGateway.state(app).sender.send_email(message)
    page.goto(f"{base_url}/outbox")
    page.locator("#messages a").first.click()
    link = page.locator("#attachments a")
    playwright_api.expect(link).to_have_text("report.csv")
    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    assert download.suggested_filename == "report.csv"
    saved = tmp_path / "saved.csv"
    download.save_as(saved)
    assert saved.read_bytes() == b"a,b\n1,2\n"  # every attachment travels base64-encoded: byte for byte
