"""Each API key sees and acts on only the queued messages it sent; a key named in GATEWAY_ADMIN_KEYS, the open API
and the operator's CLI see every one. On every store (``store_url``: SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import json
import re
import smtplib
import time
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from api_helpers import assert_problem
from click.testing import CliRunner
from queue_support import MESSAGE, Queued, queued_app
from smtp_server import HOST
from sqlalchemy import create_engine, text

from mail_gateway import MailGateway
from mail_gateway.cli import main
from mail_gateway.errors import ConfigurationError, StoreSchemaError
from mail_gateway.ingress.server import IngressServer
from mail_gateway.settings import load_settings
from mail_gateway.store import messages
from mail_gateway.store.database import Store
from mail_gateway.store.engine import MIGRATIONS, head_revision

KEYS = "a:key-a,b:key-b,ops:key-ops,key-plain-1,key-plain-2"
ADMIN = "ops"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def later() -> str:
    """Two days ahead: the message stays scheduled (and cancelable) for the whole test."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 2 * 86400))


@pytest.fixture
def queued(queued_apps, make_settings, store_url) -> Queued:
    app = queued_app(make_settings, workers=False, gateway_store_url=store_url, gateway_api_keys=KEYS,
                     gateway_admin_keys=ADMIN)
    queued_apps.append(app)
    return app


def send(queued: Queued, key: str, path: str = "/v1/messages", payload: Any = None) -> str:
    payload = payload if payload is not None else {**MESSAGE, "send_at": later()}
    response = queued.client.post(path, json=payload, headers=auth(key))
    assert response.status_code in (200, 202), response.get_data(as_text=True)
    body = response.get_json()
    return body["results"][0]["id"] if "results" in body else body["id"]


def listed(queued: Queued, key: str, query: str = "") -> tuple[int, list[str]]:
    response = queued.client.get(f"/v1/messages{query}", headers=auth(key))
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    return body["total"], [m["id"] for m in body["messages"]]


def assert_like_an_unknown_id(response: Any, message_id: str, unknown: Any) -> None:
    """404 with the very body an id that does not exist gets: nothing tells the two apart."""
    body = assert_problem(response, 404, "no-such-message")
    expected = assert_problem(unknown, 404, "no-such-message")
    assert json.dumps(body).replace(message_id, "ID") == json.dumps(expected).replace("no-such-id", "ID")
    assert dict(response.headers).keys() == dict(unknown.headers).keys()


def test_another_key_gets_404_on_every_route_and_changes_nothing(queued) -> None:
    mine = send(queued, "key-a")
    client = queued.client
    for method, path in (("get", "/v1/messages/{}"), ("post", "/v1/messages/{}/retry"),
                         ("delete", "/v1/messages/{}")):
        unknown = getattr(client, method)(path.format("no-such-id"), headers=auth("key-b"))
        response = getattr(client, method)(path.format(mine), headers=auth("key-b"))
        assert_like_an_unknown_id(response, mine, unknown)
    found = queued.client.get(f"/v1/messages/{mine}", headers=auth("key-a")).get_json()
    assert found["status"] == "scheduled" and found["events"] == []  # neither retried nor canceled
    assert found["recipients"][0]["status"] == "scheduled"


def test_each_key_lists_only_its_own_messages(queued) -> None:
    ours = [send(queued, "key-a"), send(queued, "key-a")]
    theirs = send(queued, "key-b")
    assert listed(queued, "key-a") == (2, ours)
    assert listed(queued, "key-b") == (1, [theirs])
    assert listed(queued, "key-a", "?status=scheduled&start=1&limit=5") == (2, ours[1:])
    assert listed(queued, "key-b", "?status=canceled") == (0, [])


def test_a_key_acts_on_its_own_messages(queued) -> None:
    mine = send(queued, "key-a")
    assert queued.client.post(f"/v1/messages/{mine}/retry", headers=auth("key-a")).status_code == 202
    canceled = queued.client.delete(f"/v1/messages/{mine}", headers=auth("key-a"))
    assert canceled.status_code == 200 and canceled.get_json()["status"] == "canceled"
    assert canceled.get_json()["api_key"] == "a"
    # Nothing pending now: its owner hears 409, another key still only 404 (never that it exists).
    assert_problem(queued.client.delete(f"/v1/messages/{mine}", headers=auth("key-a")), 409, "nothing-pending")
    assert_problem(queued.client.delete(f"/v1/messages/{mine}", headers=auth("key-b")), 404, "no-such-message")
    assert_problem(queued.client.post(f"/v1/messages/{mine}/retry", headers=auth("key-b")), 404, "no-such-message")


def test_batch_and_raw_messages_belong_to_their_key_too(queued) -> None:
    batch = send(queued, "key-a", "/v1/messages/batch", {"messages": [{**MESSAGE, "send_at": later()}]})
    raw = send(queued, "key-a", "/v1/messages/raw", {
        "mail_from": "app@example.com", "rcpt_to": ["friend@example.com"], "send_at": later(),
        "data": base64.b64encode(b"Subject: raw\r\n\r\nhi\r\n").decode()})
    assert listed(queued, "key-a") == (2, [batch, raw])
    assert listed(queued, "key-b") == (0, [])
    for message_id in (batch, raw):
        assert_problem(queued.client.get(f"/v1/messages/{message_id}", headers=auth("key-b")), 404)


def test_unnamed_keys_are_each_their_own_owner(queued) -> None:
    first = send(queued, "key-plain-1")
    second = send(queued, "key-plain-2")
    assert listed(queued, "key-plain-1") == (1, [first])
    assert listed(queued, "key-plain-2") == (1, [second])
    assert_problem(queued.client.delete(f"/v1/messages/{first}", headers=auth("key-plain-2")), 404)
    shown = queued.client.get(f"/v1/messages/{first}", headers=auth("key-plain-1")).get_json()
    assert shown["api_key"] is None  # no name to show; the key itself (or anything made of it) never is


def test_an_idempotency_key_replays_only_to_the_api_key_that_used_it(queued) -> None:
    payload = {**MESSAGE, "send_at": later()}
    first = queued.client.post("/v1/messages", json=payload, headers={**auth("key-a"), "Idempotency-Key": "order-1"})
    again = queued.client.post("/v1/messages", json=payload, headers={**auth("key-a"), "Idempotency-Key": "order-1"})
    other = queued.client.post("/v1/messages", json=payload, headers={**auth("key-b"), "Idempotency-Key": "order-1"})
    assert again.headers.get("Idempotent-Replayed") == "true" and again.get_json() == first.get_json()
    assert "Idempotent-Replayed" not in other.headers and other.get_json()["id"] != first.get_json()["id"]
    assert listed(queued, "key-a") == (1, [first.get_json()["id"]])
    assert listed(queued, "key-b") == (1, [other.get_json()["id"]])


def test_an_admin_key_sees_and_acts_on_every_message(queued) -> None:
    ids = [send(queued, "key-a"), send(queued, "key-b"), send(queued, "key-plain-1")]
    total, seen = listed(queued, "key-ops")
    assert (total, seen) == (3, ids)
    page = queued.client.get("/v1/messages", headers=auth("key-ops")).get_json()["messages"]
    assert [m["api_key"] for m in page] == ["a", "b", None]
    assert queued.client.get(f"/v1/messages/{ids[1]}", headers=auth("key-ops")).get_json()["api_key"] == "b"
    assert queued.client.post(f"/v1/messages/{ids[0]}/retry", headers=auth("key-ops")).status_code == 202
    canceled = queued.client.delete(f"/v1/messages/{ids[1]}", headers=auth("key-ops"))
    assert canceled.status_code == 200 and canceled.get_json()["status"] == "canceled"
    assert queued.client.get(f"/v1/messages/{ids[1]}", headers=auth("key-b")).get_json()["status"] == "canceled"
    mine = send(queued, "key-ops")  # what an admin key sends is its own: other keys do not see it
    assert listed(queued, "key-a") == (1, ids[:1]) and listed(queued, "key-ops")[0] == 4
    assert_problem(queued.client.get(f"/v1/messages/{mine}", headers=auth("key-a")), 404)


def test_every_route_with_a_message_id_hides_other_keys_messages(queued) -> None:
    """Routes added later are held to the same rule: each one taking a message id is tried here."""
    mine = send(queued, "key-a")
    message_id = re.compile(r"<(?:message_id:)?message_id>")  # the converter that is never a fixed route's name
    routes = [(rule.rule, method) for rule in queued.app.url_map.iter_rules()
              if message_id.match(rule.rule.removeprefix("/v1/messages/"))
              for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    assert len(routes) >= 3
    for rule, method in routes:
        path = message_id.sub(mine, rule)
        unknown = queued.client.open(message_id.sub("no-such-id", rule), method=method,
                                     headers=auth("key-b"))
        assert_like_an_unknown_id(queued.client.open(path, method=method, headers=auth("key-b")), mine, unknown)
        assert queued.client.open(path, method=method, headers=auth("key-ops")).status_code in (200, 202)


def test_ingress_messages_have_no_owner_only_admins_and_the_cli_see_them(queued, monkeypatch, store_url) -> None:
    state = MailGateway.state(queued.app)
    ingress = IngressServer(state.settings, state.sender, port=0).start()
    try:
        with smtplib.SMTP(HOST, ingress.port, timeout=10) as client:
            refused = client.sendmail("app@example.com", ["friend@example.com"], b"Subject: hi\r\n\r\nhi\r\n")
    finally:
        ingress.stop()
    assert refused == {}
    [relayed] = listed(queued, "key-ops")[1]
    assert queued.client.get(f"/v1/messages/{relayed}", headers=auth("key-ops")).get_json()["api_key"] is None
    for key in ("key-a", "key-plain-1"):
        assert listed(queued, key) == (0, [])
        assert_problem(queued.client.get(f"/v1/messages/{relayed}", headers=auth(key)), 404)
    mine = send(queued, "key-a")
    monkeypatch.setenv("GATEWAY_STORE_URL", store_url)
    monkeypatch.setenv("GATEWAY_DELIVERY", "queued")
    listing = CliRunner().invoke(main, ["queue", "--all"])
    assert listing.exit_code == 0 and relayed in listing.output and mine in listing.output, listing.output
    shown = CliRunner().invoke(main, ["queue", "show", mine])
    assert json.loads(shown.output)["api_key"] == "a"


def test_the_open_api_sees_every_message(queued_apps, make_settings, store_url) -> None:
    keyed = queued_app(make_settings, workers=False, gateway_store_url=store_url, gateway_api_keys=KEYS)
    opened = queued_app(make_settings, workers=False, gateway_store_url=store_url)
    queued_apps.extend([keyed, opened])
    ids = [send(keyed, "key-a"), send(keyed, "key-plain-1")]
    ids.append(opened.send({**MESSAGE, "send_at": later()})["id"])
    body = opened.client.get("/v1/messages").get_json()
    assert body["total"] == 3 and [m["id"] for m in body["messages"]] == ids
    assert opened.client.delete(f"/v1/messages/{ids[0]}").status_code == 200
    assert listed(keyed, "key-a", "?status=canceled") == (1, ids[:1])
    assert listed(keyed, "key-b") == (0, [])  # the open API's own message is nobody's key's


@pytest.mark.parametrize(("env", "says"), [
    ({"GATEWAY_API_KEYS": "a:key-a,key-plain", "GATEWAY_ADMIN_KEYS": "ops"}, "'ops'"),
    ({"GATEWAY_ADMIN_KEYS": "ops"}, "'ops'"),
    ({"GATEWAY_API_KEYS": "a:key-a", "GATEWAY_ADMIN_KEYS": "a,b@d"}, "not a key name"),
    ({"GATEWAY_API_KEYS": "a:key-a,key-plain", "GATEWAY_ADMIN_KEYS": "key-plain"}, "the key's name instead"),
    ({"GATEWAY_API_KEYS": "a:key-a", "GATEWAY_ADMIN_KEYS": "key-a"}, "the key's name instead"),
])
def test_an_admin_key_that_names_no_key_stops_start_up(monkeypatch, env, says) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings(_env_file=None)
    message = str(caught.value)
    assert "GATEWAY_ADMIN_KEYS" in message and says in message and "\n" not in message
    assert "key-a" not in message and "key-plain" not in message


def test_admin_keys_are_read_by_name(monkeypatch) -> None:
    monkeypatch.setenv("GATEWAY_API_KEYS", "a:key-a,ops:key-ops,root:key-root")
    monkeypatch.setenv("GATEWAY_ADMIN_KEYS", " ops, root ")
    assert load_settings(_env_file=None).admin_key_names == frozenset({"ops", "root"})


def _store_at_0001(url: str) -> None:
    """A store as the release before owners left it: schema revision 0001, one message in it."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = conn
            command.upgrade(config, "0001")
            conn.execute(text("INSERT INTO messages (id, message_id, envelope_from, size, via, status, created_at, "
                              "expires_at, due_at, attempts, updated_at) VALUES ('old-one', '<old@example.com>', "
                              "'app@example.com', 1, 'http', 'scheduled', 1, 9e12, 9e12, 0, 1)"))
            conn.execute(text("INSERT INTO recipients (message_id, position, email, status, attempts, "
                              "next_attempt_at, updated_at) VALUES ('old-one', 0, 'a@example.com', 'scheduled', 0, "
                              "9e12, 1)"))
            conn.commit()
    finally:
        engine.dispose()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_messages_stored_before_the_upgrade_have_no_owner(engine, request, tmp_path, monkeypatch) -> None:
    if engine == "sqlite":
        url = f"sqlite:///{tmp_path}/old.sqlite3"
    else:
        url = request.getfixturevalue("postgres").create_database()
    _store_at_0001(url)
    if engine == "postgresql":  # a shared store is upgraded by the operator; until then the gateway refuses it
        with pytest.raises(StoreSchemaError, match="run `mail-gateway db upgrade`"):
            Store(url).open()
        monkeypatch.setenv("GATEWAY_STORE_URL", url)
        upgraded = CliRunner().invoke(main, ["db", "upgrade"])
        assert upgraded.exit_code == 0, upgraded.output
        assert f"from 0001 to revision {head_revision()}" in upgraded.output, upgraded.output
        assert CliRunner().invoke(main, ["db", "check"]).exit_code == 0
    store = Store(url).open()  # an SQLite store upgrades itself here
    found = store.read(lambda conn: messages.get_message(conn, "old-one", 0))
    assert found is not None and found["api_key"] is None and found["status"] == "scheduled"
    assert store.read(lambda conn: messages.get_message(conn, "old-one", 0, owner="a")) is None
    assert store.read(lambda conn: messages.list_messages(conn, status=None, limit=5, start=0, now=0))[0] == 1
    assert store.read(lambda conn: messages.list_messages(conn, status=None, limit=5, start=0, now=0,
                                                          owner="a"))[0] == 0
