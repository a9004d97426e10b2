"""The inbox page (/outbox) in a real headless Chromium at phone, tablet and desktop widths.

The gateway runs in a real HTTP server on a free loopback port with the memory backend; mail is sent through its
API and the page must show it without being reloaded. One browser serves the whole module; each test opens its
own context (its own viewport, colour scheme and storage).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from inbox_browser_support import (
    PAGE_TITLE,
    PATIENCE_MS,
    WIDTHS,
    Served,
    axe_violations,
    browser_page,
    expect,
    launched_chromium,
    other_site,
    overflows,
    screenshot,
    send,
    serving,
)

from mail_gateway import MailGateway, create_app
from mail_gateway.settings import GatewaySettings

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw"
                       "AAAABJRU5ErkJggg==")  # a 1x1 PNG
HOSTILE_SUBJECT = "<script>document.title='owned'</script>Hello"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched_chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def module_app() -> Flask:
    return create_app(GatewaySettings(_env_file=None, gateway_env="testing", mail_backend="memory",
                                      mail_memory_max_messages=20_000, gateway_outbox_allow_internal_links=True))


@pytest.fixture(scope="module")
def module_server(module_app: Flask) -> Iterator[Served]:
    with serving(module_app) as served:
        yield served


@pytest.fixture
def served(module_server: Served) -> Served:
    """The module's gateway with an empty outbox and a fresh record of requests."""
    assert module_server.app.test_client().delete("/v1/outbox").status_code == 204
    module_server.paths.clear()
    return module_server


def rich_message(app: Flask, served_url: str, **fields: Any) -> str:
    html = ("<p id='greeting' style='color: rgb(0, 128, 0)'>Hello <b>HTML</b></p>"
            f"<img id='remote' alt='logo' src='{served_url}/remote-logo.png'>"
            "<a href='https://example.com/confirm?t=1'>Confirm</a>")
    return send(app, html=html, tags=["welcome"], text="Your code is 493817. Welcome aboard, friend.",
                to=["bo@example.com", "Cy Ré <cy@example.com>"],
                attachments=[{"filename": "dot.png", "content_type": "image/png",
                              "content": base64.b64encode(PNG).decode()}], **fields)


@pytest.mark.parametrize("width", list(WIDTHS))
def test_list_and_message_fit_every_width(browser, served: Served, width: str) -> None:
    for sender, subject, tags in (("Billing <billing@example.com>", "Your invoice for May", ["billing"]),
                                  ("Support <help@example.com>", "Re: a very long subject that a phone must cut "
                                   "rather than scroll sideways for, however long it goes on", []),
                                  ("Ops <ops@example.com>", "Nightly report", ["report"])):
        send(served.app, subject=subject, tags=tags, **{"from": sender})
    rich_message(served.app, served.url, subject="Welcome — confirmación")
    with browser_page(browser, width) as page:
        page.goto(f"{served.url}/outbox")
        expect(page).to_have_title(PAGE_TITLE)
        row = page.locator("#messages li").first
        expect(row.locator(".from")).to_contain_text("Ana Lima")
        expect(row.locator(".to")).to_contain_text("bo@example.com")
        expect(row.locator(".subject")).to_have_text("Welcome — confirmación")
        expect(row.locator(".snippet")).to_contain_text("Your code is 493817")
        expect(row.locator("time")).to_have_text(re.compile(r"now|second|minute"))  # relative...
        expect(row.locator("time")).to_have_attribute("title", re.compile(r"\d{4}"))  # ...exact on hover
        expect(row.locator(".attachment-mark")).to_have_attribute("aria-label", "1 attachment")
        expect(row.locator(".tag")).to_have_text("welcome")
        expect(row).to_have_class(re.compile(r"\bunread\b"))
        assert overflows(page) == 0
        if width == "desktop":
            screenshot(page, "list.png")

        row.locator("a.open").click()
        expect(page.locator("#detail-subject")).to_have_text("Welcome — confirmación")
        expect(row).not_to_have_class(re.compile(r"\bunread\b"))  # opening it marks it read
        if width == "phone":  # one pane at a time: the message, with a way back
            expect(page.locator("#list-pane")).to_be_hidden()
            expect(page.locator("#back")).to_be_visible()
        else:
            expect(page.locator("#list-pane")).to_be_visible()
            expect(page.locator("#back")).to_be_hidden()
        expect(page.locator("#detail-headers")).to_contain_text("Cy Ré <cy@example.com>")
        expect(page.frame_locator("iframe#html-part").locator("#greeting b")).to_have_text("HTML")
        expect(page.locator("#attachments img.thumb")).to_have_js_property("naturalWidth", 1)
        assert overflows(page) == 0
        if width == "desktop":
            screenshot(page, "message.png")
        if width == "phone":
            screenshot(page, "phone.png")
            page.locator("#back").click()
            expect(page.locator("#list-pane")).to_be_visible()
            expect(page.locator("#detail")).to_be_hidden()
            assert overflows(page) == 0


def test_message_view_blocks_remote_content_until_allowed(browser, served: Served, tmp_path) -> None:
    message_id = rich_message(served.app, served.url, subject="Remote")
    with browser_page(browser) as page:
        page.goto(f"{served.url}/outbox?id={message_id}")
        frame = page.locator("iframe#html-part")
        expect(frame).to_have_attribute("sandbox", "")
        expect(page.locator("#remote-notice")).to_contain_text("Remote content blocked")
        frame.element_handle().content_frame().wait_for_load_state("load")  # a frame's load waits for its images
        assert served.count("/remote-logo.png") == 0, "the message's HTML loaded a remote image"

        with page.expect_request(lambda request: request.url.endswith("/remote-logo.png")):
            page.locator("#allow-remote").click()
        expect(frame).to_have_attribute("src", re.compile(r"/html\?remote=1$"))
        expect(page.locator("#remote-notice")).to_have_text("Remote content allowed for this message.")

        for name, pixels in (("phone", 375), ("tablet", 768)):  # previews at a width, in one click
            page.locator(f".widths [data-width={name}]").click()
            expect(frame).to_have_js_property("offsetWidth", pixels)
        page.locator(".widths [data-width=desktop]").click()
        expect(frame).to_have_class("preview-desktop")

        expect(page.locator("#delivery")).to_contain_text("bo@example.com")  # what the backend recorded
        page.locator("#tab-links").click()
        expect(page.locator("#codes")).to_have_text("493817")
        expect(page.locator("#links")).to_contain_text("https://example.com/confirm?t=1")
        page.locator("#tab-text").click()
        expect(page.locator("#text-part")).to_have_text("Your code is 493817. Welcome aboard, friend.")
        page.locator("#tab-source").click()
        expect(page.locator("#raw-source")).to_contain_text("Subject: Remote")
        page.locator("#tab-headers").click()
        expect(page.locator("#all-headers")).to_contain_text("X-Tags")

        with page.expect_download() as download_info:
            page.locator("#attachments a").click()
        download = download_info.value
        assert download.suggested_filename == "dot.png"
        download.save_as(tmp_path / "dot.png")
        assert (tmp_path / "dot.png").read_bytes() == PNG  # base64 on the wire, byte for byte here


def test_a_message_of_many_images_asks_for_a_few_thumbnails_only(browser, served: Served) -> None:
    images = [{"filename": f"dot-{n}.png", "content_type": "image/png", "content": base64.b64encode(PNG).decode()}
              for n in range(40)]
    message_id = send(served.app, subject="Forty images", attachments=images)
    with browser_page(browser) as page:
        asked: list[str] = []
        page.on("request", lambda request: asked.append(request.url) if "/attachments/" in request.url else None)
        page.goto(f"{served.url}/outbox?id={message_id}")
        expect(page.locator("#attachments li")).to_have_count(40)
        expect(page.locator("#attachments a[download]")).to_have_count(40)  # every one still downloads
        thumbnails = page.locator("#attachments img.thumb")
        expect(thumbnails).to_have_count(12)
        for n in range(12):  # each one loaded (naturalWidth 1): every request the page makes for them is made
            expect(thumbnails.nth(n)).to_have_js_property("naturalWidth", 1)
        assert len(asked) == 12, asked
        expect(page.locator("#attachments li").nth(12)).to_contain_text("dot-12.png")


def test_the_links_tab_draws_the_first_500_links_and_says_how_many_more(browser, served: Served) -> None:
    html = "".join(f"<a href='https://example.com/{n}'>link {n}</a>" for n in range(600))
    message_id = send(served.app, subject="Many links", html=html)
    with browser_page(browser) as page:
        page.goto(f"{served.url}/outbox?id={message_id}")
        page.locator("#tab-links").click()
        expect(page.locator("#links li")).to_have_count(500)
        expect(page.locator("#links li").last).to_contain_text("https://example.com/499")
        expect(page.locator("#links-more")).to_have_text("100 more not shown.")
        expect(page.locator("#panel-links h3").first).to_have_text("Links (600)")


def test_the_template_and_version_a_message_came_from_are_shown(browser, served: Served) -> None:
    raw = (b"From: app@example.com\r\nTo: bo@example.com\r\nSubject: From a template\r\n"
           b"X-Template: welcome; version=3\r\nMessage-ID: <t1@example.com>\r\n\r\nHello\r\n")
    kept = MailGateway.state(served.app).backend.keep(raw, ("bo@example.com",), "app@example.com")
    with browser_page(browser, "tablet") as page:
        page.goto(f"{served.url}/outbox?id={kept.id}")
        expect(page.locator("#detail-template")).to_have_text("welcome; version=3")


def test_hostile_content_is_shown_as_text_and_runs_nowhere(browser, served: Served) -> None:
    html = ("<script>document.documentElement.dataset.ran = 'yes'; parent.document.title = 'owned';</script>"
            "<p id='greeting'>Hello</p>")
    with browser_page(browser) as page:
        page.goto(f"{served.url}/outbox")
        expect(page.locator("#empty")).to_be_visible()
        page.evaluate("window.notReloaded = true")
        send(served.app, subject=HOSTILE_SUBJECT, text="<script>document.title='owned'</script> in the text",
             html=html)
        links = page.locator("#messages a.open")
        expect(links).to_have_count(1)
        expect(links.first.locator(".subject")).to_have_text(HOSTILE_SUBJECT)  # shown as text, not run
        assert page.evaluate("window.notReloaded") is True, "the page was reloaded to show the new message"
        links.first.click()
        expect(page.locator("#detail-subject")).to_have_text(HOSTILE_SUBJECT)
        frame = page.frame_locator("iframe#html-part")
        expect(frame.locator("#greeting")).to_have_text("Hello")
        expect(frame.locator("html")).not_to_have_attribute("data-ran", "yes")
        expect(page).to_have_title(PAGE_TITLE)


def test_a_sender_named_with_thousands_of_spaces_is_listed_at_once(browser, served: Served) -> None:
    # The list read a sender's name with a regular expression that tried each space against all the others: a
    # quoted name folded over lines of spaces froze the page for seconds at each redraw (30 KB: 6 s), 300 KB for
    # minutes. The deadline is the patience of every wait here, many times what the page now takes.
    raw = (b'From: "Ana' + (b" " * 900 + b"\r\n") * 330 + b' Lima" <ana@example.com>\r\nTo: bo@example.com\r\n'
           b"Subject: Spaces\r\nMessage-ID: <spaces@example.com>\r\n\r\nHello\r\n")
    MailGateway.state(served.app).backend.keep(raw, ("bo@example.com",), "ana@example.com")
    with browser_page(browser) as page:
        page.goto(f"{served.url}/outbox")
        # wait_for_function keeps its deadline while the page is busy; an expect() would wait for the page.
        page.wait_for_function("() => document.querySelector('#messages .from')", timeout=PATIENCE_MS)
        sender = page.locator("#messages .from")
        expect(sender).to_contain_text("Lima")
        expect(sender).not_to_contain_text("ana@example.com")  # the name alone, as for any sender


def test_another_sites_page_loads_nothing_of_the_outbox(browser, served: Served) -> None:
    # Only changes were refused from another site: any page the developer opened could load a message's images
    # (their size showing), a message's parts by number, or the event stream (each holding a server thread).
    message_id = send(served.app, subject="Private", attachments=[
        {"filename": "dot.png", "content_type": "image/png", "content": base64.b64encode(PNG).decode()}])
    image = f"{served.url}/outbox/messages/{message_id}/attachments/0"
    with other_site(f'<img id="leak" src="{image}">') as url, browser_page(browser) as page:
        page.goto(url)
        page.wait_for_function("document.getElementById('leak').complete")
        assert page.evaluate("document.getElementById('leak').naturalWidth") == 0, "another site loaded the image"
        page.goto(f"{served.url}/outbox?id={message_id}")  # the outbox itself shows it, from its own page
        expect(page.locator("#attachments img.thumb")).to_have_js_property("naturalWidth", 1)


@pytest.mark.parametrize("width", list(WIDTHS))
def test_actions_read_delete_select_clear_and_download(browser, served: Served, width: str, tmp_path) -> None:
    ids = [send(served.app, subject=f"Message {n}") for n in range(4)]
    with browser_page(browser, width) as page:
        page.goto(f"{served.url}/outbox?id={ids[-1]}")
        expect(page.locator("#detail-subject")).to_have_text("Message 3")
        expect(page.locator("#toggle-read")).to_have_text("Mark unread")
        with page.expect_response(marking(read=False)):  # the button shows the mark before the gateway has it
            page.locator("#toggle-read").click()
        expect(page.locator("#toggle-read")).to_have_text("Mark read")
        assert served.app.test_client().get(f"/v1/outbox/{ids[-1]}").json["read"] is False

        with page.expect_download() as download_info:
            page.locator("#download-eml").click()
        download = download_info.value
        assert download.suggested_filename == f"{ids[-1]}.eml"
        saved = tmp_path / "saved.eml"
        download.save_as(saved)
        assert saved.read_bytes() == served.app.test_client().get(f"/v1/outbox/{ids[-1]}/raw").data

        page.locator("#delete-one").click()
        expect(page.locator("#messages li")).to_have_count(3)
        if width == "phone":
            expect(page.locator("#list-pane")).to_be_visible()
        page.locator(f"#messages li[data-id='{ids[0]}'] input.pick").check()
        page.locator(f"#messages li[data-id='{ids[1]}'] input.pick").check()
        page.locator("#bulk-read").click()
        for message_id in ids[:2]:
            expect(page.locator(f"#messages li[data-id='{message_id}']")).not_to_have_class(re.compile(r"\bunread\b"))
        expect(page.locator(f"#messages li[data-id='{ids[2]}']")).to_have_class(re.compile(r"\bunread\b"))
        page.locator("#bulk-delete").click()
        expect(page.locator("#messages li")).to_have_count(1)
        expect(page.locator("#messages .subject")).to_have_text("Message 2")

        page.locator("#clear").click()
        expect(page.locator("#confirm-clear")).to_be_visible()
        page.locator("#confirm-clear-cancel").click()  # changing one's mind keeps the mail
        expect(page.locator("#messages li")).to_have_count(1)
        page.locator("#clear").click()
        page.locator("#confirm-clear-ok").click()
        expect(page.locator("#messages li")).to_have_count(0)
        expect(page.locator("#empty")).to_be_visible()
        expect(page.locator("#count")).to_have_text("0 messages")
        assert MailGateway.state(served.app).backend.messages == []
        assert overflows(page) == 0


@pytest.mark.parametrize("width", list(WIDTHS))
def test_keyboard_moves_opens_deletes_and_toggles(browser, served: Served, width: str) -> None:
    for n in range(3):
        send(served.app, subject=f"Key {n}")
    with browser_page(browser, width) as page:
        page.goto(f"{served.url}/outbox")
        rows = page.locator("#messages li")
        expect(rows).to_have_count(3)
        page.keyboard.press("j")
        expect(rows.nth(0)).to_have_class(re.compile(r"\bcurrent\b"))
        page.keyboard.press("j")
        page.keyboard.press("ArrowDown")
        expect(rows.nth(2)).to_have_class(re.compile(r"\bcurrent\b"))
        page.keyboard.press("k")
        page.keyboard.press("ArrowUp")
        expect(rows.nth(0)).to_have_class(re.compile(r"\bcurrent\b"))
        page.keyboard.press("j")
        page.keyboard.press("Enter")
        expect(page.locator("#detail-subject")).to_have_text("Key 1")
        expect(rows.nth(1)).not_to_have_class(re.compile(r"\bunread\b"))
        page.locator("#detail-subject").focus()
        page.keyboard.press("u")
        expect(rows.nth(1)).to_have_class(re.compile(r"\bunread\b"))
        page.keyboard.press("u")
        expect(rows.nth(1)).not_to_have_class(re.compile(r"\bunread\b"))
        page.keyboard.press("Delete")
        expect(rows).to_have_count(2)
        expect(page.locator("#messages .subject")).to_have_text(["Key 2", "Key 0"])
        page.keyboard.press("Escape")
        page.keyboard.press("/")
        expect(page.locator("#search")).to_be_focused()
        page.keyboard.press("Escape")
        page.keyboard.press("?")
        expect(page.locator("#keys-help")).to_be_visible()
        expect(page.locator("#keys-help")).to_contain_text("mark read / unread")
        page.keyboard.press("Escape")
        expect(page.locator("#keys-help")).to_be_hidden()
        assert overflows(page) == 0


def test_a_delete_that_finishes_late_leaves_the_focus_where_the_user_moved_it(browser, served: Served) -> None:
    """The user presses Delete, then "/" before the gateway answers: the search box keeps the keys.

    The DELETE is held by the browser until after the key press, so the order is fixed rather than left to timing.
    """
    for n in range(2):
        send(served.app, subject=f"Late {n}")
    held: list[Any] = []
    with browser_page(browser, "desktop") as page:
        page.route(re.compile(r"/outbox/messages/\d+$"),
                   lambda route: held.append(route) if route.request.method == "DELETE" else route.continue_())
        page.goto(f"{served.url}/outbox")
        rows = page.locator("#messages li")
        expect(rows).to_have_count(2)
        page.keyboard.press("j")
        page.keyboard.press("Enter")
        expect(page.locator("#detail-subject")).to_have_text("Late 1")
        with page.expect_request(lambda request: request.method == "DELETE"):
            page.keyboard.press("Delete")
        page.keyboard.press("/")
        expect(page.locator("#search")).to_be_focused()
        wait_until_held(page, held, 1, "the DELETE")
        held[0].continue_()
        expect(page.locator("#messages .subject")).to_have_text(["Late 0"])
        expect(rows.nth(0)).to_have_class(re.compile(r"\bcurrent\b"))
        expect(page.locator("#search")).to_be_focused()


def wait_until_held(page: Any, held: list[Any], count: int, what: str) -> None:
    for _ in range(500):  # a route handler runs when Playwright next reads its events
        if len(held) >= count:
            return
        page.wait_for_timeout(20)
    raise AssertionError(f"{what} never reached the route that holds it ({len(held)} of {count} held)")


def is_patch(response: Any) -> bool:
    return response.request.method == "PATCH"


def marking(*, read: bool) -> Callable[[Any], bool]:
    """Whether a response answers a read mark of ``read``."""
    return lambda response: is_patch(response) and response.request.post_data_json == {"read": read}


def open_with_keys(page: Any, served: Served, subject: str) -> Any:
    """The outbox page with the message ``subject`` opened by the keyboard and marked read; its row."""
    page.goto(f"{served.url}/outbox")
    row = page.locator("#messages li", has_text=subject)
    expect(row).to_have_count(1)
    page.keyboard.press("j")
    with page.expect_response(is_patch):  # opening marks it read
        page.keyboard.press("Enter")
    return row


def test_a_list_answer_older_than_a_mark_does_not_undo_it(browser, served: Served) -> None:
    """A list answer the gateway made before a mark reached it arrives after the mark: the row keeps the mark, and
    "u" toggles from it. The browser holds the answer until after the mark, so the order is fixed, not timed."""
    send(served.app, subject="Stale")
    held: list[Any] = []
    with browser_page(browser, "desktop") as page:
        row = open_with_keys(page, served, "Stale")
        # From here each list request is held; the first one's answer is read from the gateway at once (so it
        # says "read") and handed to the page only after "u" has marked the message unread.
        page.route(re.compile(r"/outbox/messages\?"),
                   lambda route: held.append((route, None if held else route.fetch())))
        send(served.app, subject="Newer")  # the page hears of it and asks for the list
        wait_until_held(page, held, 1, "the list request")
        page.locator("#detail-subject").focus()
        with page.expect_response(is_patch):
            page.keyboard.press("u")
        expect(row).to_have_class(re.compile(r"\bunread\b"))
        first, answer = held[0]
        first.fulfill(response=answer)
        wait_until_held(page, held, 2, "the list request after the old answer")  # so the old answer was handled
        expect(row).to_have_class(re.compile(r"\bunread\b"))
        with page.expect_request(lambda request: request.method == "PATCH") as marked:
            page.keyboard.press("u")
        assert marked.value.post_data_json == {"read": True}
        page.unroute(re.compile(r"/outbox/messages\?"))  # which lets the held requests go on
        expect(row).not_to_have_class(re.compile(r"\bunread\b"))


def test_u_pressed_twice_before_the_gateway_answers_marks_twice_in_order(browser, served: Served) -> None:
    """Two presses of "u" while the first mark is on its way: unread, then read, sent in that order, and the
    message ends read on screen and in the gateway. The browser holds each mark until the test lets it go."""
    message_id = send(served.app, subject="Twice")
    held: list[Any] = []
    with browser_page(browser, "desktop") as page:
        row = open_with_keys(page, served, "Twice")
        page.route(re.compile(r"/outbox/messages/\d+$"),
                   lambda route: held.append(route) if route.request.method == "PATCH" else route.continue_())
        page.locator("#detail-subject").focus()
        page.keyboard.press("u")
        page.keyboard.press("u")
        wait_until_held(page, held, 1, "the first mark")
        held[0].continue_()
        wait_until_held(page, held, 2, "the second mark")
        with page.expect_response(marking(read=True)):
            held[1].continue_()
        assert [route.request.post_data_json for route in held] == [{"read": False}, {"read": True}]
        expect(row).not_to_have_class(re.compile(r"\bunread\b"))
        expect(page.locator("#toggle-read")).to_have_text("Mark unread")
        assert served.app.test_client().get(f"/v1/outbox/{message_id}").json["read"] is True


def test_a_refused_mark_is_taken_back_and_said(browser, served: Served) -> None:
    """The page shows a mark at once; when the gateway refuses it, the mark shown goes back and the page says why."""
    message_id = send(served.app, subject="Refused")
    with browser_page(browser, "desktop") as page:
        row = open_with_keys(page, served, "Refused")
        page.route(re.compile(r"/outbox/messages/\d+$"), lambda route: route.fulfill(
            status=503, content_type="application/problem+json",
            body='{"title": "Store unavailable", "detail": "the store is busy; try again"}')
            if route.request.method == "PATCH" else route.continue_())
        page.locator("#toggle-read").click()
        expect(page.locator("#toast")).to_have_text("Not marked: the store is busy; try again")
        expect(row).not_to_have_class(re.compile(r"\bunread\b"))
        expect(page.locator("#toggle-read")).to_have_text("Mark unread")
        assert served.app.test_client().get(f"/v1/outbox/{message_id}").json["read"] is True


@pytest.mark.parametrize("width", list(WIDTHS))
def test_search_as_you_type_with_mailpits_syntax(browser, served: Served, width: str) -> None:
    send(served.app, subject="Facture été", text="Montant dû", to=["zoé@example.com"])
    send(served.app, subject="Invoice", tags=["billing"], **{"from": "Bo <bo@example.com>"})
    send(served.app, subject="Welcome")
    with browser_page(browser, width) as page:
        page.goto(f"{served.url}/outbox")
        subjects = page.locator("#messages .subject")
        expect(subjects).to_have_count(3)
        page.locator("#search-help-button").click()
        expect(page.locator("#search-help")).to_contain_text("has:attachment")
        page.locator("#search-help-button").click()
        search = page.locator("#search")
        search.press_sequentially("ETE", delay=20)  # no accents and any case still finds "été"
        expect(subjects).to_have_text(["Facture été"])
        search.fill("tag:billing")
        expect(subjects).to_have_text(["Invoice"])
        search.fill("-from:bo@example.com -subject:facture")
        expect(subjects).to_have_text(["Welcome"])
        search.fill('subject:"')
        expect(page.locator("#search-error")).to_contain_text("query")
        expect(search).to_have_attribute("aria-invalid", "true")
        search.fill("")
        expect(subjects).to_have_count(3)
        expect(page.locator("#search-error")).to_have_text("")
        assert overflows(page) == 0


def test_dark_scheme_follows_the_system_and_the_toggle_is_remembered(browser, served: Served) -> None:
    send(served.app)
    background = "getComputedStyle(document.body).backgroundColor"
    with browser_page(browser, color_scheme="dark") as page:
        page.goto(f"{served.url}/outbox")
        expect(page.locator("html")).to_have_attribute("data-theme", "dark")
        assert page.evaluate(background) == "rgb(13, 17, 23)"
        page.locator("#theme-button").click()
        expect(page.locator("html")).to_have_attribute("data-theme", "light")
        assert page.evaluate(background) == "rgb(246, 248, 250)"
        page.reload()
        expect(page.locator("html")).to_have_attribute("data-theme", "light")  # remembered over the system's
        page.locator("#theme-button").click()
        expect(page.locator("html")).to_have_attribute("data-theme", "dark")
        expect(page.locator("#messages li")).to_have_count(1)
        screenshot(page, "list-dark.png")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_serious_accessibility_violations(browser, served: Served, scheme: str) -> None:
    message_id = rich_message(served.app, served.url, subject="Accessible")
    send(served.app, subject="Second")
    with browser_page(browser, color_scheme=scheme) as page:
        page.goto(f"{served.url}/outbox")
        expect(page.locator("#messages li")).to_have_count(2)
        assert axe_violations(page) == [], "the list view"
        page.locator(f"#messages li[data-id='{message_id}'] a.open").click()
        expect(page.frame_locator("iframe#html-part").locator("#greeting")).to_be_visible()
        assert axe_violations(page) == [], "the message view"


def test_new_mail_is_pushed_and_notified(browser, served: Served) -> None:
    with browser_page(browser, permissions=["notifications"]) as page:
        # Records each notification the page shows, then shows it as the browser would.
        page.add_init_script("""{
          const Real = window.Notification;
          window.shownNotifications = [];
          window.Notification = class extends Real {
            constructor(title, options) { super(title, options); window.shownNotifications.push(title); }
          };
        }""")
        page.goto(f"{served.url}/outbox")
        expect(page.locator("#empty")).to_be_visible()
        expect(page.locator("body")).to_have_attribute("data-live", "open")  # the event stream is connected
        listed_before = served.count("/outbox/messages?")
        send(served.app, subject="Pushed")
        expect(page.locator("#messages .subject")).to_have_text(["Pushed"])
        page.wait_for_function("() => window.shownNotifications.includes('Pushed')")
        # Pushed, not polled: the one new message cost about one listing, not one a second.
        assert served.count("/outbox/messages?") - listed_before <= 2


def test_ten_thousand_messages_page_search_and_one_request_in_flight(browser, served: Served) -> None:
    backend = MailGateway.state(served.app).backend
    for n in range(10_000):
        data = (f"From: sender{n}@example.com\r\nTo: user{n % 100}@example.com\r\nSubject: Bulk {n}\r\n"
                f"Message-ID: <bulk{n}@example.com>\r\nDate: Mon, 1 Jun 2026 10:00:00 +0000\r\n\r\nBody {n}\r\n")
        backend.keep(data.encode(), (f"user{n % 100}@example.com",), f"sender{n}@example.com")
    with browser_page(browser) as page:
        page.add_init_script("""{
          const real = window.fetch;
          window.listRequests = {now: 0, most: 0, total: 0};
          window.fetch = async (...args) => {
            const counted = String(args[0]).includes('/outbox/messages?');
            const seen = window.listRequests;
            if (counted) { seen.now++; seen.total++; seen.most = Math.max(seen.most, seen.now); }
            try { return await real(...args); } finally { if (counted) seen.now--; }
          };
        }""")
        page.goto(f"{served.url}/outbox")
        expect(page.locator("#count")).to_have_text("10000 messages")
        assert page.locator("#messages li").count() <= 50  # the DOM holds one page, not ten thousand rows
        expect(page.locator("#messages .subject").first).to_have_text("Bulk 9999")
        page.locator("#older").click()
        expect(page.locator("#range")).to_have_text("51–100 of 10000")
        expect(page.locator("#messages .subject").first).to_have_text("Bulk 9949")
        page.locator("#search").press_sequentially("to:user42@example.com subject:bulk", delay=5)
        # The first search reads every kept message once: patience here, the speed is the benchmark's to measure.
        expect(page.locator("#range")).to_have_text("1–50 of 100", timeout=120_000)
        expect(page.locator("#messages .subject").first).to_have_text("Bulk 9942")
        assert page.locator("#messages li").count() == 50
        seen = page.evaluate("window.listRequests")
        assert seen["most"] == 1, f"{seen['most']} list requests were in flight at once"


def test_checks_tab_reports_compatibility_size_and_checks_links(browser, served: Served) -> None:
    html = (f"<div style='display:flex'><img src='{served.url}/outbox/static/outbox.css'></div>"
            f"<a href='{served.url}/outbox/static/outbox.css'>Style</a>")
    message_id = send(served.app, subject="Checked", html=html)
    with browser_page(browser) as page:
        page.goto(f"{served.url}/outbox?id={message_id}")
        page.locator("#tab-checks").click()
        expect(page.locator("#check-score")).to_have_text(re.compile(r"^\d{1,3}$"))
        expect(page.locator("#check-size")).to_contain_text("not clipped")
        expect(page.locator("#compat-issues")).to_contain_text("flex")
        flex = page.locator("#compat-issues tbody tr", has_text="display:flex")
        expect(flex.locator(".lines")).to_have_text("line 1")
        flex.locator("summary").click()
        expect(flex.locator("details li", has_text="Outlook, Windows:").first).to_contain_text("unsupported")
        expect(page.locator("#check-warnings")).to_contain_text("alt")
        screenshot(page, "checks.png")
        page.locator("#check-links").click()
        results = page.locator("#link-results tbody tr")
        expect(results.first).to_contain_text("/outbox/static/outbox.css")
        expect(results.first).to_contain_text("200")


def test_the_checks_tab_counts_every_link_and_checks_as_many_as_one_check_fetches(browser, served: Served) -> None:
    html = "".join(f"<a href='{served.url}/outbox/static/outbox.css?n={n}'>{n}</a>" for n in range(600))
    message_id = send(served.app, subject="Many links checked", html=html)
    with browser_page(browser) as page:
        page.goto(f"{served.url}/outbox?id={message_id}")
        page.locator("#tab-checks").click()
        # The checks list 500 of the 600 links and count them all; one check fetches at most 50 (MAX_LINKS).
        expect(page.locator("#check-links")).to_have_text("Check the first 50 of 600 links")
        page.locator("#check-links").click()
        results = page.locator("#link-results tbody tr")
        expect(results).to_have_count(50)
        expect(results.last).to_contain_text("outbox.css?n=49")
        expect(results.last).to_contain_text("200")
        expect(page.locator("#links-unchecked")).to_have_text("550 more not checked: one check fetches 50 links.")


def test_chaos_panel_turns_failures_on_and_lists_them(browser, served: Served) -> None:
    try:
        with browser_page(browser) as page:
            page.goto(f"{served.url}/outbox")
            page.locator("#chaos-button").click()
            form = page.locator("#chaos-form")
            expect(page.locator("#chaos-dialog")).to_be_visible()
            form.locator("[name=enabled]").check()
            form.locator("[name=reply]").select_option("550 5.1.1")
            form.locator("[name=recipients]").fill("*@fail.example")
            page.locator("#chaos-save").click()
            expect(page.locator("#chaos-on")).to_contain_text("550 5.1.1")
            response = served.app.test_client().post("/v1/messages", json={
                "from": "app@example.com", "to": ["x@fail.example"], "subject": "Doomed", "text": "no"})
            assert response.status_code >= 400, response.json
            send(served.app, subject="Fine", to=["ok@example.com"])  # another recipient still gets through
            page.locator("#chaos-dialog .close-dialog").click()
            page.locator("#chaos-button").click()
            expect(page.locator("#chaos-recent li")).to_have_count(1)
            expect(page.locator("#chaos-recent li")).to_contain_text("x@fail.example")
            screenshot(page, "chaos.png")
            form.locator("[name=enabled]").uncheck()
            page.locator("#chaos-save").click()
            expect(page.locator("#chaos-on")).to_be_hidden()
    finally:
        served.app.test_client().put("/v1/outbox/chaos", json={"enabled": False})


def test_the_chaos_form_waits_for_the_switchs_state_so_nothing_typed_is_overwritten(browser, served: Served) -> None:
    """The dialog asks for the switch's state when it opens; filled in on arrival, the form would lose what was
    typed meanwhile, and Save would turn the switch off. The state is held here until the fields are checked."""
    with browser_page(browser) as page:
        with page.expect_response(lambda response: response.url.endswith("/outbox/chaos")):
            page.goto(f"{served.url}/outbox")  # the page asks for the state once for its banner
        form = page.locator("#chaos-form")
        held: list[Any] = []
        page.route(re.compile(r"/outbox/chaos$"),
                   lambda route: held.append(route) if route.request.method == "GET" else route.continue_())
        page.locator("#chaos-button").click()
        wait_until_held(page, held, 1, "the dialog's request for the switch's state")
        for name in ("enabled", "reply", "percent", "recipients", "delay_ms"):
            expect(form.locator(f"[name={name}]")).to_be_disabled()
        expect(page.locator("#chaos-save")).to_be_disabled()
        held[0].continue_()
        form.locator("[name=recipients]").fill("*@fail.example")  # Playwright waits for the field to be enabled
        expect(form).to_have_attribute("aria-busy", "false")
        expect(form.locator("[name=recipients]")).to_have_value("*@fail.example")
        expect(page.locator("#chaos-save")).to_be_enabled()


def test_release_sends_a_kept_message_to_a_real_smtp_server(browser, served: Served,
                                                           smtp_server_factory) -> None:
    smtp = smtp_server_factory()
    message_id = send(served.app, subject="Release me")
    with browser_page(browser, "phone") as page:
        page.goto(f"{served.url}/outbox?id={message_id}")
        page.locator("#release-button").click()
        form = page.locator("#release-form")
        form.locator("[name=to]").fill("me@example.com")
        form.locator("[name=host]").fill("127.0.0.1")
        form.locator("[name=port]").fill(str(smtp.port))
        page.locator("#release-send").click()
        expect(page.locator("#release-result")).to_contain_text("Released: 250")
        assert overflows(page) == 0
    [received] = smtp.messages
    assert received.rcpt_tos == ["me@example.com"] and b"Subject: Release me" in received.data


def test_an_admin_key_switches_between_the_inboxes_of_named_keys(browser, make_settings) -> None:
    keys = {"ana": "ana-key-0123456789", "bo": "bo-key-0123456789", "root": "root-key-0123456789"}
    app = create_app(make_settings(mail_backend="memory", gateway_admin_keys="root",
                                   gateway_api_keys=",".join(f"{name}:{key}" for name, key in keys.items())))
    for name in ("ana", "bo"):
        send(app, headers={"Authorization": f"Bearer {keys[name]}"}, subject=f"Sent by {name}")
    with serving(app) as served:
        for name, seen in (("ana", ["Sent by ana"]), ("root", ["Sent by bo", "Sent by ana"])):
            with browser_page(browser, "tablet") as page:
                page.goto(f"{served.url}/outbox")
                page.locator("input[name=key]").fill(keys[name])
                page.locator("button[type=submit]").click()
                expect(page.locator("#messages .subject")).to_have_text(seen)
                if name == "ana":
                    expect(page.locator("#owner-label")).to_be_hidden()  # one inbox, no switcher
                    continue
                expect(page.locator("#owner-label")).to_be_visible()
                page.locator("#owner").select_option("bo")
                expect(page.locator("#messages .subject")).to_have_text(["Sent by bo"])
                assert overflows(page) == 0


def test_the_retention_notice_says_what_was_dropped(browser, make_settings) -> None:
    app = create_app(make_settings(mail_backend="memory", mail_memory_max_messages=2))
    for n in range(3):
        send(app, subject=f"Kept {n}")
    with serving(app) as served, browser_page(browser, "phone") as page:
        page.goto(f"{served.url}/outbox")
        expect(page.locator("#messages .subject")).to_have_text(["Kept 2", "Kept 1"])
        expect(page.locator("#retention")).to_contain_text(re.compile(r"\b1 (older )?message"))
        expect(page.locator("#retention")).to_contain_text("newest 2")
        assert overflows(page) == 0
