"""A kept message's checks: HTML compatibility from caniemail.com's shipped dataset, size against Gmail's clipping,
warnings, and the link check against loopback HTTP servers the tests start."""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import tinycss2

from mail_gateway import create_app
from mail_gateway.outbox.checks import compat, features, links, lookup, refresh_dataset, usage
from mail_gateway.outbox.checks.lookup import LOOKUPS_KEY, NameLookups
from mail_gateway.outbox.models import LINKS_LISTED

HTML = """<!doctype html><html><head><style>
  .box { display: flex; border-radius: 4px } /* display:grid in a comment is not used */
  @media (prefers-color-scheme: dark) { .box { background-color: #000 } }
  a:hover { color: red }
</style></head><body>
<div class="box" style="margin-top: 2rem; background-image: linear-gradient(red, blue)">
<img src="https://cdn.example.com/logo.webp"><img src="cid:photo" alt="">
<a href="https://example.com/welcome?x=1">Welcome</a> <a href="mailto:help@example.com">help</a>
</div></body></html>"""


@pytest.fixture
def client(make_settings):
    # The link check's servers are on loopback, which it fetches only when allowed (test_link_check_addresses).
    return create_app(make_settings(mail_backend="memory", gateway_outbox_allow_internal_links=True)).test_client()


def kept(client, **fields) -> str:
    body = {"from": "App <app@example.com>", "to": ["friend@example.com"], "subject": "Hello", **fields}
    assert client.post("/v1/messages", json=body).status_code == 202
    return client.get("/v1/outbox").json["messages"][0]["id"]


def test_the_report_names_unsupported_features_per_client_family_from_the_dataset(client) -> None:
    checks = client.get(f"/v1/outbox/{kept(client, html=HTML)}/checks").json
    report = checks["html_compatibility"]
    assert report["dataset"]["name"] == "Can I email" and report["dataset"]["licence"] == "MIT"
    issues = {issue["slug"]: issue for issue in report["issues"]}
    flex = issues["css-display-flex"]
    assert flex["feature"] == "display:flex" and flex["kind"] == "css" and "Gmail" in flex["partial_in"]
    assert "css-display-grid" not in issues  # a comment uses nothing
    assert {"css-at-media-prefers-color-scheme", "css-pseudo-class-hover", "css-linear-gradient",
            "image-webp"} <= set(issues)
    assert issues["image-webp"]["kind"] == "attribute" and "Outlook" in issues["image-webp"]["partial_in"]
    assert 0 < checks["score"] < 100


def test_each_issue_says_its_lines_and_which_platforms_fall_short_with_the_datasets_notes(client) -> None:
    issues = {issue["slug"]: issue for issue in
              client.get(f"/v1/outbox/{kept(client, html=HTML)}/checks").json["html_compatibility"]["issues"]}
    # Where a <style> rule begins, where an element's start tag is: the lines of HTML above.
    assert issues["css-display-flex"]["lines"] == [2]
    assert issues["css-at-media-prefers-color-scheme"]["lines"] == [3]
    assert issues["css-pseudo-class-hover"]["lines"] == [4]
    assert issues["css-linear-gradient"]["lines"] == [6]
    assert issues["image-webp"]["lines"] == [7]
    flex = issues["css-display-flex"]
    assert flex["url"] == "https://www.caniemail.com/features/css-display-flex/"
    by_platform = {(p["family"], p["platform"]): p for p in flex["platforms"]}
    shipped = next(f for f in json.loads(compat.DATA.read_text())["features"] if f["slug"] == "css-display-flex")
    cited = shipped["platforms"]["gmail"]["ios"].split()[1][1:]  # "a #1": partial, see note 1
    assert by_platform["Gmail", "iOS"] == {"family": "Gmail", "platform": "iOS", "support": "partial",
                                           "notes": [shipped["notes"][cited]]}
    assert by_platform["Outlook", "Windows"]["support"] == "unsupported"
    assert ("Gmail", "Desktop Webmail") not in by_platform  # supported there: not listed


def test_a_feature_used_many_times_lists_its_first_twenty_lines_once_each() -> None:
    html = "".join(f'<p style="display:flex">{n}</p>\n' for n in range(1, 31)) + '<p style="display:flex">x</p>'
    assert usage.used_features(html)["css-display-flex"].lines == list(range(1, 21))


def test_the_dataset_keeps_each_platforms_newest_result_and_the_notes_it_cites() -> None:
    source = {"last_update_date": "2026-01-01", "nicenames": {"family": {"gmail": "Gmail"}, "platform": {}},
              "data": [{"slug": "css-x", "title": "x", "category": "css", "url": "u", "notes": None,
                        "notes_by_num": {"1": "old", "2": "new", "3": "unused"},
                        "stats": {"gmail": {"ios": {"2019-02": "n #1", "2026-03": "a #2"}, "android": {"2019": "y"}}}}]}
    [feature] = refresh_dataset.reduced(source, "1.0")["features"]
    assert feature["platforms"] == {"gmail": {"ios": "a #2", "android": "y"}}
    assert feature["notes"] == {"2": "new"} and feature["support"] == {"gmail": "a"} and feature["note"] is None


def test_the_score_is_100_without_html_and_lower_the_less_is_supported(client) -> None:
    plain = client.get(f"/v1/outbox/{kept(client, text='Hi')}/checks").json
    assert plain["score"] == 100 and plain["html_compatibility"]["issues"] == []
    simple = client.get(f"/v1/outbox/{kept(client, html='<p>Hi</p>', text='Hi')}/checks").json["score"]
    risky = client.get(f"/v1/outbox/{kept(client, html=HTML, text='Hi')}/checks").json["score"]
    assert risky < simple <= 100


def test_the_dataset_ships_with_its_licence_beside_it() -> None:
    folder = Path(compat.DATA).parent
    assert "MIT License" in (folder / "LICENSE").read_text() and "caniemail" in (folder / "LICENSE").read_text()
    data = json.loads(compat.DATA.read_text())
    assert len(data["features"]) > 250 and data["families"]["gmail"] == "Gmail"


def test_size_against_gmails_clipping(client) -> None:
    small = client.get(f"/v1/outbox/{kept(client, html='<p>small</p>', text='small')}/checks").json
    assert small["size"]["clipped"] is False and small["size"]["gmail_clip_bytes"] == 102400
    big_html = "<p>" + "é" * 52_000 + "</p>"  # 104,007 bytes in UTF-8, though 52,007 characters
    big = client.get(f"/v1/outbox/{kept(client, html=big_html, text='big')}/checks").json
    assert big["size"]["html_bytes"] == 104_007 and big["size"]["clipped"] is True
    assert big["size"]["message_bytes"] > big["size"]["html_bytes"] / 2
    assert "gmail-clipped" in [w["code"] for w in big["warnings"]]


def test_warnings_for_missing_alt_text_part_and_list_unsubscribe_of_bulk_mail(client) -> None:
    codes = [w["code"] for w in client.get(f"/v1/outbox/{kept(client, html=HTML, tags=['marketing'])}/checks")
             .json["warnings"]]
    assert codes == ["img-missing-alt", "no-text-part", "no-list-unsubscribe"]
    fine = kept(client, html='<img src="cid:x" alt="">', text="x", tags=["receipt"])
    assert client.get(f"/v1/outbox/{fine}/checks").json["warnings"] == []
    precedence = kept(client, text="x", headers={"Precedence": "bulk"})
    assert [w["code"] for w in client.get(f"/v1/outbox/{precedence}/checks").json["warnings"]] == [
        "no-list-unsubscribe"]


def _lines_run(function, *args: object) -> int:
    """How many lines of ``features`` running ``function`` executes: the work done, whatever the machine's speed."""
    count = 0

    def trace(frame, event, arg):
        nonlocal count
        if frame.f_code.co_filename != features.__file__:
            return None
        count += event == "line"
        return trace

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        list(function(*args))
    finally:
        sys.settrace(previous)
    return count


def test_selectors_name_pseudo_classes_elements_and_attribute_selectors() -> None:
    rules = tinycss2.parse_stylesheet("a:hover, p::before, li:nth-child(2n), input[type=text]:focus {}")
    assert list(features.selector_features(rules[0].prelude)) == [
        "css-pseudo-class-hover", "css-pseudo-element-before", "css-pseudo-class-nth-child",
        "css-selector-attribute", "css-pseudo-class-focus"]


def test_a_selector_is_read_in_one_pass_however_many_pseudo_classes_it_has() -> None:
    def work(pseudo_classes: int) -> int:
        prelude = tinycss2.parse_stylesheet(":a" * pseudo_classes + "{}")[0].prelude
        return _lines_run(features.selector_features, prelude)

    # Twice the selector, twice the work: rescanning it for each pseudo-class made it four times.
    assert work(600) < 2.5 * work(300)


@pytest.mark.parametrize("html", [
    '<p style="display: flex; background-image: linear-gradient(' + "a(" * 1000 + '">x</p>',
    "<style>.box { display: flex } @media (prefers-color-scheme: dark) {" + "@media screen {" * 1000 + "</style>",
    "<style>.box { display: flex } @media (prefers-color-scheme: dark) and " + "(" * 1000 + "{}</style>",
], ids=["functions", "at-rules", "parentheses"])
def test_css_nested_too_deep_is_read_to_the_limit_and_said_so(client, html: str) -> None:
    response = client.get(f"/v1/outbox/{kept(client, html=html, text='x')}/checks")
    assert response.status_code == 200
    issues = {issue["slug"] for issue in response.json["html_compatibility"]["issues"]}
    assert "css-display-flex" in issues
    assert issues & {"css-linear-gradient", "css-at-media-prefers-color-scheme"}
    deep = [w for w in response.json["warnings"] if w["code"] == "css-nested-too-deep"]
    assert len(deep) == 1 and f"deeper than {features.MAX_DEPTH} levels" in deep[0]["message"]
    plain = client.get(f"/v1/outbox/{kept(client, html=HTML, text='x')}/checks").json["warnings"]
    assert "css-nested-too-deep" not in [w["code"] for w in plain]


def test_every_href_and_src_is_listed_once_and_text_urls_without_html(client) -> None:
    listed = client.get(f"/v1/outbox/{kept(client, html=HTML)}/checks").json["links"]
    assert listed == [{"url": "https://cdn.example.com/logo.webp", "kind": "src"}, {"url": "cid:photo", "kind": "src"},
                      {"url": "https://example.com/welcome?x=1", "kind": "href"},
                      {"url": "mailto:help@example.com", "kind": "href"}]
    text = "Confirm at https://example.com/confirm?t=abc. Or http://example.com/help, thanks."
    assert [link["url"] for link in client.get(f"/v1/outbox/{kept(client, text=text)}/checks").json["links"]] == [
        "https://example.com/confirm?t=abc", "http://example.com/help"]


def test_the_checks_list_the_first_500_distinct_links_and_count_them_all(client) -> None:
    html = "".join(f'<a href="https://example.com/{n}">{n}</a><img src="https://example.com/{n}">'
                   for n in range(LINKS_LISTED + 100))  # each address twice: listed and counted once
    checks = client.get(f"/v1/outbox/{kept(client, html=html, text='Also https://example.com/text')}/checks").json
    assert len(checks["links"]) == LINKS_LISTED == 500
    assert checks["links"][-1] == {"url": f"https://example.com/{LINKS_LISTED - 1}", "kind": "href"}
    assert checks["link_count"] == LINKS_LISTED + 101  # the text's address counts, though it is not listed
    schema = client.get("/openapi.json").json["components"]["schemas"]["MessageChecks"]
    assert "link_count" in schema["required"] and schema["properties"]["link_count"]["type"] == "integer"
    assert client.get(f"/v1/outbox/{kept(client, html=HTML)}/checks").json["link_count"] == 4


class Site(BaseHTTPRequestHandler):
    """/ok answers 200, /moved redirects twice to /ok, /loop redirects to itself, /big sends 10 MB, /stall
    never answers; everything else is a 404."""

    stalled: threading.Event

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?")[0]
        if path == "/stall":
            self.stalled.wait(30)
            return
        redirect = {"/moved": "/moved-again", "/moved-again": "/ok", "/loop": "/loop",
                    "/malformed": "http://[oops/"}.get(path)
        status = 302 if redirect else 200 if path in ("/ok", "/big") else 404
        body = b"x" * 10_000_000 if path == "/big" else b"hello"
        self.send_response(status)
        if redirect:
            self.send_header("Location", redirect)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:  # the checker stopped reading: what the size bound is for
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def site() -> Iterator[str]:
    stalled = threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (Site,), {"stalled": stalled}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    stalled.set()
    server.shutdown()
    server.server_close()
    thread.join(10)


def test_the_link_check_fetches_each_http_link_following_and_listing_redirects(client, site, monkeypatch) -> None:
    monkeypatch.setattr(links, "PER_LINK_SECONDS", 3.0)  # the stalled link waits this long
    paths = ["ok", "moved", "loop", "missing", "big", "stall"]
    html = "".join(f'<a href="{site}/{path}">{path}</a>' for path in paths) + '<a href="mailto:x@example.com">m</a>'
    checked = client.post(f"/v1/outbox/{kept(client, html=html, text='x')}/links/check").json["links"]
    by_path = {link["url"].rsplit("/", 1)[-1]: link for link in checked}
    assert [link["url"] for link in checked] == [f"{site}/{p}" for p in paths] + ["mailto:x@example.com"]
    assert (by_path["ok"]["status"], by_path["ok"]["redirects"], by_path["ok"]["error"]) == (200, [], None)
    assert by_path["moved"]["status"] == 200 and by_path["moved"]["redirects"] == [f"{site}/moved-again",
                                                                                   f"{site}/ok"]
    assert by_path["loop"]["error"] == "more than 5 redirects" and len(by_path["loop"]["redirects"]) == 6
    assert by_path["missing"]["status"] == 404 and by_path["big"]["status"] == 200
    assert by_path["stall"]["status"] is None and by_path["stall"]["error"]
    mailto = by_path["mailto:x@example.com"]
    assert mailto["status"] is None and "not fetched" in mailto["error"]


def test_a_redirect_to_a_malformed_address_is_that_links_error_not_an_internal_one(client, site, caplog) -> None:
    html = f'<a href="{site}/malformed">m</a><a href="{site}/ok">ok</a>'
    checked = client.post(f"/v1/outbox/{kept(client, html=html, text='x')}/links/check").json["links"]
    assert [(link["status"], link["error"]) for link in checked] == [
        (302, "redirected to a malformed address (http://[oops/); not followed"), (200, None)]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


class Drip:
    """A loopback server that answers a status line, then its headers one byte at a time, 20 ms apart, for ten
    seconds: every read gets a byte well within any socket timeout, yet the answer never comes in time."""

    BYTES = b"X-Slow: " + b"a" * 500 + b"\r\n\r\n"

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.stop = threading.Event()
        self.ended: list[bool] = []  # per connection: whether it dripped everything
        threading.Thread(target=self.accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def accept(self) -> None:
        while not self.stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.drip, args=(connection,), daemon=True).start()

    def drip(self, connection: socket.socket) -> None:
        sent = 0
        with connection:
            try:
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 200 OK\r\n")
                for sent in range(1, len(self.BYTES) + 1):
                    if self.stop.wait(0.02):
                        break
                    connection.sendall(self.BYTES[sent - 1:sent])
            except OSError:
                pass  # the checker hung up: what the deadline is for
        self.ended.append(sent == len(self.BYTES))


@pytest.fixture
def drip() -> Iterator[Drip]:
    server = Drip()
    yield server
    server.stop.set()
    server.listener.close()


def test_a_server_answering_a_byte_at_a_time_is_cut_off_at_the_links_deadline(client, drip, monkeypatch) -> None:
    monkeypatch.setattr(links, "PER_LINK_SECONDS", 0.3)
    message = kept(client, html=f'<a href="{drip.url}/slow">slow</a>', text="x")
    [checked] = client.post(f"/v1/outbox/{message}/links/check").json["links"]
    assert checked["status"] is None
    assert checked["error"] == "timed out: no complete answer within 0.3 seconds"
    for _ in range(3000):  # the connection is closed, so the server stops dripping long before its end
        if drip.ended:
            break
        time.sleep(0.01)
    assert drip.ended == [False]


def test_the_overall_deadline_holds_against_slow_servers_and_unresolved_names(client, drip, monkeypatch) -> None:
    monkeypatch.setattr(links, "PER_LINK_SECONDS", 600.0)
    monkeypatch.setattr(links, "TOTAL_SECONDS", 0.3)
    resolving = threading.Event()  # a name that never resolves: no socket deadline reaches it
    client.application.extensions[LOOKUPS_KEY] = NameLookups(resolver(stuck=resolving))
    urls = [f"{drip.url}/{n}" for n in range(3)] + ["http://stuck.invalid/"]
    message = kept(client, html="".join(f'<a href="{url}">x</a>' for url in urls), text="x")
    try:
        checked = client.post(f"/v1/outbox/{message}/links/check").json["links"]
    finally:
        resolving.set()
    assert [link["url"] for link in checked] == urls
    assert {(link["status"], link["error"]) for link in checked} == {
        (None, "timed out: the link check's 0.3 seconds ran out")}


def resolver(stuck: threading.Event | None = None, broken: Exception | None = None,
             asked: list[str] | None = None) -> Callable[..., list]:
    """A name resolver for the link check: every name is 127.0.0.1, except that with ``stuck`` a lookup waits for
    it (a resolver that does not answer) and with ``broken`` one raises it; ``asked`` records each name."""
    def resolve(host: str, port: int, **kwargs: object) -> list:
        if asked is not None:
            asked.append(host)
        if stuck is not None:
            stuck.wait(60)
        if broken is not None and host.startswith("broken"):
            raise broken
        return socket.getaddrinfo("127.0.0.1", port, **kwargs)
    return resolve


def lookup_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "link-check-lookup"]


def test_lookups_that_never_answer_hold_at_most_a_few_threads_and_each_check_still_answers(site, monkeypatch) -> None:
    monkeypatch.setattr(links, "PER_LINK_SECONDS", 2.0)
    timed_out, busy = "timed out: no complete answer within 2 seconds", "could not check: name lookup busy"
    stuck, asked, before = threading.Event(), [], set(lookup_threads())
    lookups = NameLookups(resolver(stuck=stuck, asked=asked), threads=2)
    port = site.rsplit(":", 1)[1]
    checker = ThreadPoolExecutor(1)  # so a check that never answered fails the test instead of hanging it
    try:
        for round_ in range(5):
            urls = [f"http://name-{round_}-{n}.test:{port}/ok" for n in range(10)]
            checking = checker.submit(links.check_links, urls, lookups, internal=True)
            errors = [link["error"] for link in checking.result(timeout=60)]
            # The first two lookups hang; every later link is answered at once instead of starting another.
            assert set(errors) <= ({timed_out, busy} if round_ == 0 else {busy})
            assert len(asked) == 2 and len(set(lookup_threads()) - before) == 2
    finally:
        stuck.set()
        checker.shutdown()
    for thread in set(lookup_threads()) - before:
        thread.join(30)
    # The threads' ends free their places.
    [checked] = links.check_links([f"http://after.test:{port}/ok"], lookups, internal=True)
    assert (checked["status"], checked["error"]) == (200, None)
    assert lookup.LOOKUPS.threads == lookup.LOOKUP_THREADS == 8  # the process's bound, as docs/inbox-checks.md says


def test_an_unexpected_error_checking_one_link_is_that_links_result(client, site, caplog) -> None:
    client.application.extensions[LOOKUPS_KEY] = NameLookups(resolver(broken=RuntimeError("/etc/secret.conf")))
    port = site.rsplit(":", 1)[1]
    urls = [f"http://ok.test:{port}/ok", f"http://broken.test:{port}/ok", f"http://ok.test:{port}/missing"]
    message = kept(client, html="".join(f'<a href="{url}">x</a>' for url in urls), text="x")
    with caplog.at_level(logging.WARNING, logger="mail_gateway"):
        response = client.post(f"/v1/outbox/{message}/links/check")
    assert response.status_code == 200
    assert [(link["status"], link["error"]) for link in response.json["links"]] == [
        (200, None), (None, "could not check: internal error"), (404, None)]
    assert "secret" not in response.text and "Traceback" not in response.text
    [logged] = [record for record in caplog.records if record.name.startswith("mail_gateway")]
    assert logged.levelname == "WARNING" and "RuntimeError" in logged.getMessage()
    assert "secret" not in logged.getMessage() and logged.exc_info is None


def test_a_link_whose_host_is_malformed_is_that_links_error_not_a_500(client, site) -> None:
    client.application.extensions[LOOKUPS_KEY] = NameLookups(resolver(broken=socket.gaierror(-2, "unknown name")))
    urls = ["http://[broken/", f"{site}/ok"]
    message = kept(client, html="".join(f'<a href="{url}">x</a>' for url in urls), text="x")
    response = client.post(f"/v1/outbox/{message}/links/check")
    assert response.status_code == 200
    malformed, fine = response.json["links"]
    assert malformed["status"] is None and malformed["error"] and (fine["status"], fine["error"]) == (200, None)


def test_the_link_check_refuses_more_links_than_it_fetches_at_once(client, site) -> None:
    html = "".join(f'<a href="{site}/ok?n={n}">{n}</a>' for n in range(links.MAX_LINKS + 1))
    message = kept(client, html=html, text="x")
    refused = client.post(f"/v1/outbox/{message}/links/check")
    assert refused.status_code == 422 and refused.json["errors"][0]["field"] == "urls"
    some = client.post(f"/v1/outbox/{message}/links/check", json={"urls": [f"{site}/ok?n=3"]}).json["links"]
    assert [(link["url"], link["status"]) for link in some] == [(f"{site}/ok?n=3", 200)]
    stranger = client.post(f"/v1/outbox/{message}/links/check", json={"urls": ["http://127.0.0.1:9/elsewhere"]})
    assert stranger.status_code == 422 and stranger.json["errors"][0]["field"] == "urls"


def test_one_link_check_looks_up_no_more_names_than_it_fetches_at_once(client, site) -> None:
    asked: list[str] = []
    client.application.extensions[LOOKUPS_KEY] = NameLookups(resolver(asked=asked))
    port = site.rsplit(":", 1)[1]
    hosts = [f"name-{n}.test" for n in range(LINKS_LISTED + 100)]
    urls = [f"http://{host}:{port}/ok" for host in hosts]
    message = kept(client, html="".join(f'<a href="{url}">x</a>' for url in urls), text="x")
    refused = client.post(f"/v1/outbox/{message}/links/check")
    assert refused.status_code == 422 and f"has {len(urls)} links" in refused.json["errors"][0]["message"]
    assert asked == []
    too_many = client.post(f"/v1/outbox/{message}/links/check", json={"urls": urls[-links.MAX_LINKS - 1:]})
    assert too_many.status_code == 422 and asked == []
    beyond_the_listed = urls[-links.MAX_LINKS:]  # any of the message's links may be named, as the docs say
    checked = client.post(f"/v1/outbox/{message}/links/check", json={"urls": beyond_the_listed}).json["links"]
    assert [(link["url"], link["status"]) for link in checked] == [(url, 200) for url in beyond_the_listed]
    assert sorted(asked) == sorted(hosts[-links.MAX_LINKS:])


def test_checks_of_a_missing_message_are_a_404_problem(client) -> None:
    for response in (client.get("/v1/outbox/404/checks"), client.post("/v1/outbox/404/links/check")):
        assert response.status_code == 404 and response.json["type"].endswith(":no-such-message")


# -- hostile HTML in the links' reader ------------------------------------------------------------------------


def test_html_with_a_tag_that_never_ends_is_read_up_to_it_not_rescanned_to_the_end() -> None:
    # html.parser (before Python 3.11.13) rescanned such a rest from every '<': 200 KB pinned a thread for a
    # minute when the message was opened. The reading stops there instead.
    from mail_gateway.outbox.links import html_links

    before = '<a href="https://first.example/">first</a>'
    found, _ = html_links(before + "<a" * 100_000 + '<a href="https://after.example/">after</a>')
    assert [link.url for link in found] == ["https://first.example/"]
    # An inline image's data, however long, is not such a tag: the links after it are read.
    image = '<img src="data:image/png;base64,' + "A" * 50_000 + '">'
    found, _ = html_links(image + '<a href="https://after.example/">after</a>' + "<p>text</p>" * 5_000)
    assert [link.url for link in found] == ["data:…", "https://after.example/"]


def test_remote_css_is_found_as_before_with_spaces_only_after_a_quote() -> None:
    from mail_gateway.outbox.links import _REMOTE

    for style in ("background:url(https://x.example/a.png)", "background:url( 'https://x.example/a.png')",
                  "background:url(\" https://x.example/a.png\")", "@import 'https://x.example/s.css'"):
        assert _REMOTE.search(style), style
    for style in ("background:url(/local.png)", "background:url(" + " " * 20_000 + "x)", "color:red"):
        assert not _REMOTE.search(style), style[:40]
