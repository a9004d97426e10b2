"""GET /readyz and ``mail-gateway check`` against real servers, and against ones that are down."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner
from smtp_server import HOST, FaultHandler, RefusingSMTP, free_port
from test_smtp_backend import Authenticator

from mail_gateway import create_app
from mail_gateway.backends import file as file_backend
from mail_gateway.cli import main


def test_ready_when_the_smtp_server_answers(smtp_server, make_settings) -> None:
    response = create_app(make_settings(**smtp_server.settings())).test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "backend": "smtp"}
    assert smtp_server.messages == []


@pytest.mark.parametrize("problem", ["down", "421", "login"])
def test_not_ready_is_503_problem_json_saying_what_failed(smtp_server_factory, make_settings, problem) -> None:
    if problem == "down":
        settings = make_settings(mail_backend="smtp", mail_server=HOST, mail_port=free_port())
        expected = "could not connect"
    elif problem == "421":
        server = smtp_server_factory(FaultHandler(), smtp_class=RefusingSMTP)
        settings, expected = make_settings(**server.settings()), "421"
    else:
        server = smtp_server_factory(FaultHandler(), authenticator=Authenticator(), auth_require_tls=False)
        settings = make_settings(**server.settings(mail_username="app", mail_password="wrong-pw"))
        expected = "refused the gateway's login"  # /readyz needs no key: the login name is for the log only
    response = create_app(settings).test_client().get("/readyz")
    assert response.status_code == 503 and response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["title"] == "Not ready" and expected in body["detail"]
    assert "wrong-pw" not in response.get_data(as_text=True) and "'app'" not in response.get_data(as_text=True)


def test_failover_is_ready_while_one_upstream_answers(smtp_server, make_settings) -> None:
    url = f"failover(smtp://{HOST}:{free_port()} smtp://{HOST}:{smtp_server.port})"
    assert create_app(make_settings(mail_url=url)).test_client().get("/readyz").status_code == 200


def test_file_backend_readiness_follows_the_directory(make_settings, tmp_path) -> None:
    directory = tmp_path / "outbox"
    client = create_app(make_settings(mail_backend="file", mail_file_path=directory)).test_client()
    assert client.get("/readyz").status_code == 200
    directory.rmdir()
    directory.write_text("now a file, not a directory")
    response = client.get("/readyz")
    assert response.status_code == 503 and "MAIL_FILE_PATH" in response.get_json()["detail"]


def test_memory_backend_is_always_ready(make_settings) -> None:
    assert create_app(make_settings(mail_backend="memory")).test_client().get("/readyz").status_code == 200


def _env(monkeypatch, settings: dict) -> None:
    for name, value in settings.items():
        monkeypatch.setenv(name.upper(), str(value))


def test_check_reports_banner_extensions_and_login(smtp_server_factory, monkeypatch) -> None:
    server = smtp_server_factory(FaultHandler(), authenticator=Authenticator(), auth_require_tls=False)
    _env(monkeypatch, server.settings(mail_username="app", mail_password="s3cret-pw"))
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 0, result.output
    assert "220 " in result.output and "SIZE" in result.output and "AUTH LOGIN PLAIN" in result.output
    assert "accepted for user 'app'" in result.output and "s3cret-pw" not in result.output
    assert server.messages == []


@pytest.mark.parametrize(
    ("setup", "reason"),
    [("down", "could not connect"), ("login", "refused the login of user 'app': 535"),
     ("no-starttls", "STARTTLS extension not supported"),
     ("config", "MAIL_PORT must be a whole number (got 'seventy')")],
)
def test_check_fails_non_zero_with_a_one_line_reason(smtp_server_factory, monkeypatch, setup, reason) -> None:
    server = smtp_server_factory(FaultHandler(), authenticator=Authenticator(), auth_require_tls=False)
    settings = server.settings()
    if setup == "down":
        settings["mail_port"] = free_port()
    elif setup == "login":
        settings.update(mail_username="app", mail_password="wrong-pw")
    elif setup == "no-starttls":
        settings["mail_use_tls"] = True
    else:
        settings["mail_port"] = "seventy"
    _env(monkeypatch, settings)
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error: ") and reason in last
    assert "wrong-pw" not in result.output


def test_check_of_a_backend_without_connections_validates_the_configuration(monkeypatch) -> None:
    monkeypatch.setenv("MAIL_URL", "memory://")
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 0 and "configuration ok: backend memory" in result.output


def test_file_backend_is_not_ready_without_room_for_the_largest_message(make_settings, tmp_path, monkeypatch) -> None:
    """Finding 9 of the hostile-client review: a full disk still took a 0-byte probe file. The disk's answer says
    1 MiB is free (no test can fill a real disk; the limits stop at 1 GiB, which a disk may well have free), so a
    gateway that accepts 25 MiB messages cannot be ready to store one."""
    client = create_app(make_settings(mail_backend="file", mail_file_path=tmp_path / "outbox")).test_client()
    assert client.get("/readyz").status_code == 200
    measured = shutil.disk_usage
    monkeypatch.setattr(file_backend.shutil, "disk_usage", lambda path: measured(path)._replace(free=2**20))
    response = client.get("/readyz")
    assert response.status_code == 503 and response.mimetype == "application/problem+json"
    detail = response.get_json()["detail"]
    assert "1048576 bytes free" in detail and "GATEWAY_MAX_MESSAGE_BYTES" in detail


def test_not_ready_while_the_idempotency_store_cannot_answer(make_settings, tmp_path) -> None:
    """Finding 9: readiness asks the store a send with an Idempotency-Key needs, not only the backend."""
    import sqlite3

    store = tmp_path / "keys.sqlite3"
    client = create_app(make_settings(mail_backend="memory",
                                      gateway_idempotency_url=f"sqlite:///{store}")).test_client()
    assert client.get("/readyz").status_code == 200  # no key used yet: a store that can be created is fine
    sent = client.post("/v1/messages", headers={"Idempotency-Key": "k-1"},
                       json={"from": "a@example.com", "to": ["b@example.com"], "text": "Hi"})
    assert sent.status_code == 202 and client.get("/readyz").status_code == 200
    holder = sqlite3.connect(store, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holding the write lock
    try:
        locked = client.get("/readyz")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert locked.status_code == 503 and "store" in locked.get_json()["detail"]
    assert client.get("/readyz").status_code == 200
    for leftover in tmp_path.glob("keys.sqlite3*"):
        leftover.unlink()  # deleted while the gateway runs
    # A store deleted under the gateway is recreated with its schema (and logged loudly,
    # tests/test_store_resilience.py), so it answers again.
    assert client.get("/readyz").status_code == 200 and store.exists()


def test_a_queued_node_is_ready_while_its_upstream_is_down_and_not_while_its_store_is(make_settings,
                                                                                       tmp_path) -> None:
    """A load balancer takes a node out when /readyz fails: in queued mode an upstream outage is what the queue is
    for, so it must not take every node out; a store that cannot answer must."""
    import sqlite3

    from smtp_server import HOST, free_port

    store = tmp_path / "store.sqlite3"
    down = {"mail_backend": "smtp", "mail_server": HOST, "mail_port": free_port(), "mail_timeout": 1}
    queued = create_app(make_settings(**down, gateway_delivery="queued", gateway_store_url=f"sqlite:///{store}"))
    assert queued.test_client().get("/readyz").status_code == 200
    assert create_app(make_settings(**down)).test_client().get("/readyz").status_code == 503  # direct: not ready
    holder = sqlite3.connect(store, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert queued.test_client().get("/readyz").status_code == 503
    finally:
        holder.execute("ROLLBACK")
        holder.close()
