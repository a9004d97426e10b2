"""Finding 8 of the hostile-client review: with API keys set the outbox page and its data need a key too (a
browser enters it once and keeps an HttpOnly, SameSite=Strict cookie), only allowed Host names are served (no
DNS rebinding), and state-changing outbox requests from another site are refused."""

from __future__ import annotations

import time

import pytest
from api_helpers import assert_problem

from mail_gateway import create_app
from mail_gateway.errors import ConfigurationError
from mail_gateway.outbox.guard import COOKIE, COOKIE_PATH
from mail_gateway.settings import load_settings

KEY = "outbox-key-1"
HELLO = {"from": "app@example.com", "to": ["friend@example.com"], "subject": "Hello", "text": "Hi"}
BEARER = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def app(make_settings):
    return create_app(make_settings(gateway_env="development", mail_backend="memory", gateway_api_keys=KEY))


@pytest.fixture
def message_id(app) -> str:
    client = app.test_client()
    assert client.post("/v1/messages", json=HELLO, headers=BEARER).status_code == 202
    return client.get("/v1/outbox", headers=BEARER).json["messages"][0]["id"]


def test_with_api_keys_the_page_and_its_data_need_a_key(app, message_id) -> None:
    client = app.test_client()
    for path in ("/outbox/messages", f"/outbox/messages/{message_id}", f"/outbox/messages/{message_id}/raw",
                 f"/outbox/messages/{message_id}/html"):
        assert_problem(client.get(path), 401)
    assert_problem(client.delete("/outbox/messages"), 401)
    page = client.get("/outbox")
    assert page.status_code == 401 and page.mimetype == "text/html"
    assert b'name="key"' in page.data and b"Hello" not in page.data  # a form for the key, no mail
    assert client.get("/outbox/messages", headers=BEARER).status_code == 200  # programs send the header


def test_a_browser_enters_the_key_once_and_keeps_a_strict_cookie(app, message_id) -> None:
    client = app.test_client()
    wrong = client.post("/outbox/login", data={"key": "not-it"})
    assert wrong.status_code == 401 and not wrong.headers.getlist("Set-Cookie")
    login = client.post("/outbox/login", data={"key": KEY})
    assert login.status_code == 303 and login.headers["Location"].endswith("/outbox")
    [cookie] = login.headers.getlist("Set-Cookie")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/outbox" in cookie
    assert KEY not in cookie  # the cookie grants the page, it does not carry the key itself
    assert client.get("/outbox/messages").json["total"] == 1
    assert client.get(f"/outbox/messages/{message_id}/raw").status_code == 200
    page = client.get("/outbox")  # the inbox itself, not the key form; its scripts list the mail
    assert page.status_code == 200 and b'id="messages"' in page.data and b'name="key"' not in page.data
    assert client.delete("/outbox/messages").status_code == 204


@pytest.mark.parametrize(("entry", "said"), [("mail.example.com:8000", "holds a port"),
                                             ("mail example.com", "not a host name"), ("bücher.example", "xn--")])
def test_an_allowed_host_no_request_could_match_fails_at_start_up(monkeypatch, entry, said) -> None:
    # Each was taken as given, and every request to that name was then refused as not allowed.
    monkeypatch.setenv("GATEWAY_ALLOWED_HOSTS", f"localhost,{entry}")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert str(caught.value).startswith("GATEWAY_ALLOWED_HOSTS is invalid") and said in str(caught.value)


@pytest.mark.parametrize("host", ["[::1]:8000", "mail.example.com.:8000", "Service_1:8000"])
def test_allowed_hosts_are_read_as_the_host_header_is(make_settings, host) -> None:
    # Brackets and a final dot in an entry never matched: the header's name is compared without them.
    settings = make_settings(mail_backend="memory", gateway_allowed_hosts="[::1], mail.example.com., service_1")
    assert create_app(settings).test_client().get("/healthz", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("path", ["/outbox", "/outbox/messages", "/v1/outbox", "/healthz", "/v1/messages"])
def test_a_host_that_is_not_allowed_is_refused(make_settings, path) -> None:
    client = create_app(make_settings(gateway_env="development", mail_backend="memory")).test_client()
    refused = client.get(path, headers={"Host": "attacker.example"})
    body = assert_problem(refused, 400, "host-not-allowed")
    assert "GATEWAY_ALLOWED_HOSTS" in body["detail"]
    assert [e["field"] for e in body["errors"]] == ["Host"] and "attacker.example" in body["errors"][0]["message"]
    for host in ("localhost", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST:8000"):
        assert client.get("/outbox", headers={"Host": host}).status_code == 200, host


def test_allowed_hosts_are_a_setting(make_settings) -> None:
    app = create_app(make_settings(mail_backend="memory", gateway_allowed_hosts="mail.internal, .example.org"))
    client = app.test_client()
    assert client.get("/healthz", headers={"Host": "mail.internal:8000"}).status_code == 200
    assert client.get("/healthz", headers={"Host": "api.example.org"}).status_code == 200
    assert client.get("/healthz", headers={"Host": "localhost"}).status_code == 400
    anywhere = create_app(make_settings(mail_backend="memory", gateway_allowed_hosts="*")).test_client()
    assert anywhere.get("/healthz", headers={"Host": "whatever.example"}).status_code == 200


def test_listening_on_every_address_needs_the_allowed_hosts_named(make_settings) -> None:
    with pytest.raises(ConfigurationError, match="GATEWAY_ALLOWED_HOSTS"):
        create_app(make_settings(mail_backend="memory", gateway_host="0.0.0.0"))
    create_app(make_settings(mail_backend="memory", gateway_host="0.0.0.0", gateway_allowed_hosts="gw.example"))


@pytest.mark.parametrize("headers", [{"Origin": "http://attacker.example"}, {"Sec-Fetch-Site": "cross-site"},
                                     {"Sec-Fetch-Site": "same-site", "Origin": "http://sub.localhost"}])
@pytest.mark.parametrize("path", ["/outbox/messages", "/v1/outbox"])
def test_state_changing_outbox_requests_from_another_site_are_refused(make_settings, headers, path) -> None:
    app = create_app(make_settings(gateway_env="development", mail_backend="memory"))
    client = app.test_client()
    client.post("/v1/messages", json=HELLO)
    assert_problem(client.delete(path, headers=headers), 403, "cross-site-request")
    assert client.get("/v1/outbox").json["total"] == 1
    same = {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"}
    assert client.delete(path, headers=same).status_code == 204
    assert client.get("/v1/outbox").json["total"] == 0


@pytest.mark.parametrize("path", ["/outbox/messages", "/outbox/messages/1", "/outbox/messages/1/attachments/0",
                                  "/outbox/messages/1/raw", "/outbox/chaos",
                                  "/outbox/messages/1/html", "/outbox/messages/1/checks", "/v1/outbox"])
def test_another_sites_page_may_link_to_the_outbox_but_load_nothing_of_it(make_settings, path) -> None:
    app = create_app(make_settings(gateway_env="development", mail_backend="memory"))
    client = app.test_client()
    client.post("/v1/messages", json={**HELLO, "html": "<p>Hi</p>", "attachments": [
        {"filename": "a.txt", "content_type": "text/plain", "content": "aGk="}]})
    for site in ("cross-site", "same-site"):  # another port of the same host is the same site, not the same origin
        loaded = {"Sec-Fetch-Site": site, "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}
        assert_problem(client.get(path, headers=loaded), 403, "cross-site-request")
        for dest in ("object", "embed", "iframe", "frame"):  # each loads as a navigation, inside the other page
            # An <iframe> of a message's raw source stayed about:blank for the other page to read when it existed
            # (a download), and became another origin's when it did not: which messages exist, which have files.
            embedded = {**loaded, "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": dest}
            assert_problem(client.get(path, headers=embedded), 403, "cross-site-request")
        followed = {**loaded, "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}  # a link
        assert client.get(path, headers=followed).status_code == 200
    assert client.get(path, headers={"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}).status_code == 200
    assert client.get(path).status_code == 200  # a program sends none of these


# Issue 20, item 8: the page's cookie is signed with a server-side secret and expires.
SECRET = "s" * 40


def _log_in(app) -> str:
    """The cookie a browser gets for the key, as it sends it back."""
    login = app.test_client().post("/outbox/login", data={"key": KEY})
    assert login.status_code == 303
    return login.headers["Set-Cookie"].split(";", 1)[0].split("=", 1)[1]


def _sees_the_outbox(app, cookie: str) -> bool:
    client = app.test_client()
    client.set_cookie(COOKIE, cookie, path=COOKIE_PATH)
    answer = client.get("/outbox/messages")
    assert answer.status_code in (200, 401), answer.status_code
    return answer.status_code == 200


def test_the_cookie_expires_after_the_session_lifetime(make_settings) -> None:
    app = create_app(make_settings(gateway_env="development", mail_backend="memory", gateway_api_keys=KEY,
                                   gateway_outbox_session_lifetime=600))
    login = app.test_client().post("/outbox/login", data={"key": KEY})
    assert "Max-Age=600" in login.headers["Set-Cookie"]  # the browser drops it too
    cookie = _log_in(app)
    guard = app.extensions["mail_gateway.outbox_guard"]
    assert _sees_the_outbox(app, cookie)
    guard.clock = lambda: time.time() + 599
    assert _sees_the_outbox(app, cookie)
    guard.clock = lambda: time.time() + 601
    assert not _sees_the_outbox(app, cookie)
    client = app.test_client()
    client.set_cookie(COOKIE, cookie, path=COOKIE_PATH)
    assert client.get("/outbox").status_code == 401  # the key form again
    guard.clock = lambda: time.time() - 3600  # a cookie issued in the future was not issued by this gateway
    assert not _sees_the_outbox(app, cookie)


def test_a_restart_revokes_every_cookie(make_settings) -> None:
    before = create_app(make_settings(gateway_env="development", mail_backend="memory", gateway_api_keys=KEY))
    after = create_app(make_settings(gateway_env="development", mail_backend="memory", gateway_api_keys=KEY))
    cookie = _log_in(before)
    assert _sees_the_outbox(before, cookie)
    assert not _sees_the_outbox(after, cookie)


def test_worker_processes_of_one_start_accept_each_others_cookies(make_settings) -> None:
    """``serve --workers N`` reads the settings once, in the master, and each worker builds its app from them."""
    settings = make_settings(gateway_env="development", mail_backend="memory", gateway_api_keys=KEY)
    first, second = create_app(settings), create_app(settings)
    assert _sees_the_outbox(second, _log_in(first)) and _sees_the_outbox(first, _log_in(second))


def test_a_shared_secret_carries_cookies_across_hosts_and_rotating_it_revokes_them(make_settings) -> None:
    def host(secret: str, keys: str = KEY):
        return create_app(make_settings(gateway_env="development", mail_backend="memory", gateway_api_keys=keys,
                                        gateway_outbox_session_secret=secret))

    cookie = _log_in(host(SECRET))
    assert _sees_the_outbox(host(SECRET), cookie)
    assert not _sees_the_outbox(host("t" * 40), cookie)  # rotated
    assert not _sees_the_outbox(host(SECRET, keys="another-key-2"), cookie)  # its key was removed
    assert SECRET not in repr(make_settings(gateway_outbox_session_secret=SECRET))


@pytest.mark.parametrize("cookie", ["", "garbage", "1.abc", "99999999999999999999999.00", "\u00b2.00", "x" * 3000])
def test_a_forged_cookie_is_refused(app, cookie) -> None:
    assert not _sees_the_outbox(app, cookie)
