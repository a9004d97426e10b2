"""``mail-gateway worker`` as a real process (delivery only; SIGTERM stops claiming, finishes what is in flight,
releases the rest, exits) and ``mail-gateway queue`` list / show / retry / cancel against a real store holding
real messages: delivered, deferred by a 451, bounced by a 550, scheduled."""

from __future__ import annotations

import json
import os
import re
import signal
import time

import pytest
from click.testing import CliRunner
from crash_support import HoldingHandler, arrivals, queue_env, start_worker
from ingress_support import wait_until
from queue_support import MESSAGE, Queued, queued_app
from smtp_server import FaultHandler

from mail_gateway.cli import main
from mail_gateway.store.database import Store

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def test_sigterm_finishes_deliveries_in_flight_and_releases_the_rest(queued_apps, tmp_path, make_settings,
                                                                    smtp_server_factory) -> None:
    handler = HoldingHandler()
    handler.hold.set()
    upstream = smtp_server_factory(handler)
    # A long lease: a claim the worker did not give back would wait a minute before another worker took it.
    env = queue_env(tmp_path, upstream.port, gateway_queue_lease=60)
    front = queued_app(make_settings, workers=False, gateway_store_url=f"sqlite:///{tmp_path}/store.db",
                       gateway_queue_lease=60, **upstream.queued_settings())
    queued_apps.append(front)
    ids = [front.send({**MESSAGE, "subject": f"n{n}"})["id"] for n in range(6)]
    worker = start_worker(env, tmp_path, "--concurrency", "2")
    try:
        wait_until(lambda: handler.holding == 2, "two deliveries in flight")
        worker.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert worker.proc.poll() is None, "the worker left before its deliveries in flight had finished"
        handler.hold.clear()
        assert worker.proc.wait(20) == 0, worker.output()
        assert "Traceback" not in worker.output()
    finally:
        worker.stop()
    delivered = [i for i in ids if front.status(i)["status"] == "delivered"]
    assert len(delivered) == 2 and len(handler.messages) == 2  # nothing claimed after SIGTERM was tried
    for message_id in set(ids) - set(delivered):
        found = front.status(message_id)
        assert found["status"] == "queued" and found["events"] == [] and found["recipients"][0]["attempts"] == 0
    # Released, not left to their lease: the next worker delivers them at once, each once, none "unknown".
    again = start_worker(env, tmp_path)
    try:
        for message_id in ids:
            front.wait_status(message_id, "delivered", timeout=20)
    finally:
        again.stop()
    assert set(arrivals(handler).values()) == {1} and len(handler.messages) == 6
    assert all("unknown" not in [e["type"] for e in front.status(i)["events"]] for i in ids)


def test_the_worker_refuses_direct_delivery(monkeypatch) -> None:
    result = CliRunner().invoke(main, ["worker"])
    assert result.exit_code == 1 and "GATEWAY_DELIVERY=queued" in result.output


def _later(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))


@pytest.fixture
def stocked(queued_apps, tmp_path, make_settings, smtp_server_factory, monkeypatch) -> tuple[Queued, dict[str, str]]:
    """A store with one message delivered, one deferred (451), one bounced (550) and one scheduled; the
    ``mail-gateway`` commands below read it through GATEWAY_STORE_URL."""
    server = smtp_server_factory(FaultHandler(rcpt_replies={"later@example.com": "451 4.2.0 mailbox busy",
                                                            "gone@example.com": "550 5.1.1 no such user"}))
    url = f"sqlite:///{tmp_path}/store.db"
    queued = queued_app(make_settings, gateway_store_url=url, gateway_queue_backoff_min=300,
                        gateway_queue_backoff_max=600, **server.queued_settings())
    queued_apps.append(queued)
    ids = {"delivered": queued.send()["id"],
           "deferred": queued.send({**MESSAGE, "to": ["later@example.com"]})["id"],
           "bounced": queued.send({**MESSAGE, "from": "other@example.com", "to": ["gone@example.com"]})["id"],
           "scheduled": queued.send({**MESSAGE, "to": ["a@example.com", "b@example.com"],
                                     "send_at": _later(3600)})["id"]}
    for status, message_id in ids.items():
        queued.wait_status(message_id, status)
    monkeypatch.setenv("GATEWAY_STORE_URL", url)
    monkeypatch.setenv("GATEWAY_DELIVERY", "queued")
    return queued, ids


def queue(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, ["queue", *args])
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.output


def stocked_path(stocked: tuple[Queued, dict[str, str]]) -> str:
    return os.environ["GATEWAY_STORE_URL"].removeprefix("sqlite:///")


def test_an_operator_command_never_creates_a_store(tmp_path, monkeypatch) -> None:
    # The default store is relative to the current directory: run elsewhere, a command once made an empty store
    # there and answered "0 in the store" as though the queue were empty.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GATEWAY_DELIVERY", "queued")
    monkeypatch.delenv("GATEWAY_STORE_URL", raising=False)
    for args in (["--all"], ["show", "q_x"], ["retry", "--all"], ["cancel", "q_x"]):
        output = queue(*args, code=1)
        assert f"no store at {tmp_path / '.mail-gateway.sqlite3'}" in output and "GATEWAY_STORE_URL" in output
    assert list(tmp_path.iterdir()) == []


def test_an_argument_whose_bytes_are_not_utf8_is_no_message_and_no_traceback_on_both_stores(store_url,
                                                                                           monkeypatch) -> None:
    # Python gives such an argument lone surrogates, which no store can encode: each command ended in the
    # driver's UnicodeEncodeError.
    Store(store_url).open().close()
    monkeypatch.setenv("GATEWAY_STORE_URL", store_url)
    monkeypatch.setenv("GATEWAY_DELIVERY", "queued")
    bad = os.fsdecode(b"q_\xff")
    for command in ("show", "retry", "cancel"):
        assert f"no queued message has the id {bad!r}" in queue(command, bad, code=1)
    for args in (["list", "--address", bad], ["remove", f"{bad}@example.com"]):
        result = CliRunner().invoke(main, ["suppressions", *args])
        assert result.exit_code == 2 and "Invalid value" in result.output, result.output


def entry(output: str, message_id: str) -> list[str]:
    """The message's line and its recipients' lines, as the listing prints them."""
    lines = output.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith(message_id))
    end = next((n for n in range(start + 1, len(lines)) if not lines[n].startswith(" ")), len(lines))
    return lines[start:end]


def test_the_listing_is_like_mailq(stocked) -> None:
    queued, ids = stocked
    output = queue()
    assert {line.split()[0] for line in output.splitlines() if not line.startswith((" ", "--"))} == {
        ids["deferred"], ids["scheduled"]}  # pending ones only, by default
    head, *recipients = entry(output, ids["deferred"])
    size = queued.status(ids["deferred"])["size"]
    assert re.fullmatch(rf"{ids['deferred']}\s+\d+s\s+{size}\s+deferred\s+app@example\.com\s+"
                        r"last: 451 4\.2\.0 mailbox busy", head), head
    assert [r.split() for r in recipients] == [["deferred", "later@example.com", "attempts", "1", "451", "4.2.0",
                                                "mailbox", "busy"]]
    head, *recipients = entry(output, ids["scheduled"])
    assert "scheduled" in head and "last: -" in head
    assert [r.split()[:2] for r in recipients] == [["scheduled", "a@example.com"], ["scheduled", "b@example.com"]]
    assert output.splitlines()[-1] == f"-- 2 message(s) shown, 4 in the store at {stocked_path(stocked)}"
    everything = queue("--all")
    assert all(entry(everything, message_id) for message_id in ids.values())
    bounced = queue("--status", "bounced")
    assert bounced.splitlines()[-1] == f"-- 1 message(s) shown, 4 in the store at {stocked_path(stocked)}"
    head, recipient = entry(bounced, ids["bounced"])
    assert "bounced" in head and "other@example.com" in head and "550 5.1.1 no such user" in head
    assert recipient.split()[:2] == ["bounced", "gone@example.com"]
    to_gone = queue("--all", "--recipient", "GONE@example.com")
    assert {line.split()[0] for line in to_gone.splitlines() if not line.startswith((" ", "--"))} == {ids["bounced"]}
    assert queue("--all", "--tag", "none-has-it").splitlines()[0].startswith("-- 0 message(s) shown")


def test_show_prints_one_message_as_json_with_rfc3339_times(stocked) -> None:
    _, ids = stocked
    shown = json.loads(queue("show", ids["deferred"]))
    assert shown["id"] == ids["deferred"] and shown["status"] == "deferred"
    assert RFC3339.match(shown["created_at"]) and RFC3339.match(shown["recipients"][0]["next_attempt_at"])
    assert [(e["type"], e["code"], e["recipient"]) for e in shown["events"]] == [
        ("deferred", 451, "later@example.com")]
    assert all(RFC3339.match(e["at"]) for e in shown["events"])
    assert RFC3339.match(json.loads(queue("show", ids["scheduled"]))["send_at"])
    assert "no queued message has the id 'nope'" in queue("show", "nope", code=1)


def test_retry_makes_pending_recipients_due_now(stocked) -> None:
    queued, ids = stocked
    assert queue("retry", ids["deferred"]).strip() == f"{ids['deferred']}: 1 recipient(s) due now"
    # Due now rather than in five minutes: the running worker tries again (and is deferred again).
    wait_until(lambda: queued.status(ids["deferred"])["recipients"][0]["attempts"] == 2, "a second attempt")
    assert "no pending recipient" in queue("retry", ids["delivered"], code=1)
    assert "give a message id or --all" in queue("retry", code=2)
    assert queue("retry", "--all").strip() == "2 message(s) due now"
    wait_until(lambda: queued.status(ids["deferred"])["recipients"][0]["attempts"] == 3, "a third attempt")
    queued.wait_status(ids["scheduled"], "delivered")


def test_cancel_ends_pending_recipients(stocked) -> None:
    queued, ids = stocked
    assert queue("cancel", ids["scheduled"]).strip() == f"{ids['scheduled']}: 2 recipient(s) canceled"
    found = queued.status(ids["scheduled"])
    assert found["status"] == "canceled" and {r["status"] for r in found["recipients"]} == {"canceled"}
    assert "no pending recipient" in queue("cancel", ids["scheduled"], code=1)
    assert "no queued message has the id 'nope'" in queue("cancel", "nope", code=1)
    assert ids["scheduled"] not in queue()


def test_an_unknown_status_is_refused_naming_the_choices(stocked) -> None:
    output = queue("--status", "sent", code=2)
    assert "'sent' is not one of" in output and "deferred" in output


def test_pending_messages_behind_a_thousand_finished_ones_are_listed(queued_apps, tmp_path, make_settings,
                                                                     monkeypatch) -> None:
    url = f"sqlite:///{tmp_path}/store.db"
    queued = queued_app(make_settings, gateway_store_url=url, mail_backend="memory")
    queued_apps.append(queued)
    for _ in range(2):
        response = queued.client.post("/v1/messages/batch", json={"messages": [MESSAGE] * 500})
        assert response.status_code == 200
    wait_until(lambda: queued.client.get("/v1/messages?status=delivered&limit=1").get_json()["total"] == 1000,
               "a thousand messages delivered")
    later = queued.send({**MESSAGE, "send_at": _later(3600)})["id"]
    monkeypatch.setenv("GATEWAY_STORE_URL", url)
    output = queue()
    assert entry(output, later)
    assert output.splitlines()[-1] == f"-- 1 message(s) shown, 1001 in the store at {tmp_path / 'store.db'}"
