"""Webhooks against receivers that misbehave on a raw socket: garbage, too many header lines, a reply dripped one
byte at a time, a reply cut off in its headers, a redirect. Every bad reply is a failed attempt of that one
event; the other events go on being delivered, signed, to the receiver once it is healthy."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ingress_support import wait_until
from queue_support import MESSAGE, queued_app
from smtp_server import HOST
from sqlalchemy import select
from standardwebhooks import Webhook

from mail_gateway import MailGateway
from mail_gateway.queue.webhooks import WebhookSender
from mail_gateway.store.schema import webhook_deliveries
from mail_gateway.store.webhooks import RecipientEvent, add_webhooks

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
Answer = Callable[["RawReceiver", socket.socket], None]


class RawReceiver:
    """Reads each request whole, records it (and verifies its signature), then answers with the next of
    ``answers`` (``default`` once they run out), written on the socket as it is."""

    def __init__(self) -> None:
        self.listener = socket.create_server((HOST, 0))
        self.url = f"http://{HOST}:{self.listener.getsockname()[1]}/hooks"
        self.answers: list[Answer] = []
        self.default: Answer = healthy
        self.hits: list[bytes] = []  # every request's head, signed or not
        self.verified: list[tuple[str, dict[str, Any]]] = []  # (webhook-id, event) of each signed request
        self.dripping = threading.Event()
        self.drip_ended = threading.Event()
        self.answered_while_dripping: list[dict[str, Any]] = []
        self.closing = threading.Event()
        self.lock = threading.Lock()
        self.connections: list[socket.socket] = []
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                head, body = read_request(conn)
            except OSError:
                return
            with self.lock:
                self.hits.append(head)
                answer = self.answers.pop(0) if self.answers else self.default
            lines = head.decode().split("\r\n")[1:]
            headers = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines)}
            try:
                event = Webhook(SECRET).verify(body, headers)
            except Exception:  # a request without a valid signature (a followed redirect) is only counted
                event = None
            if event is not None:
                with self.lock:
                    self.verified.append((headers["webhook-id"], event))
                    if self.dripping.is_set() and not self.drip_ended.is_set():
                        self.answered_while_dripping.append(event)
            try:
                answer(self, conn)
            except OSError:
                pass

    def ids(self) -> list[str]:
        with self.lock:
            return [webhook_id for webhook_id, _ in self.verified]

    def close(self) -> None:
        self.closing.set()
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() under way; close() alone does not
        except OSError:
            pass
        self.listener.close()
        with self.lock:
            for conn in self.connections:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for thread in self.threads:
            thread.join(10)


def read_request(conn: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("the request ended in its headers")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(
        b"content-length:")), 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("the request ended in its body")
        body += chunk
    return head, body


def healthy(receiver: RawReceiver, conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")


def garbage(receiver: RawReceiver, conn: socket.socket) -> None:
    conn.sendall(b"NOT HTTP AT ALL\r\n\r\n")


def too_many_headers(receiver: RawReceiver, conn: socket.socket) -> None:
    lines = "".join(f"X-Line-{n}: {n}\r\n" for n in range(150))
    conn.sendall(f"HTTP/1.1 200 OK\r\n{lines}Content-Length: 0\r\n\r\n".encode())


def cut_off(receiver: RawReceiver, conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n")  # then the connection closes


def drip(receiver: RawReceiver, conn: socket.socket) -> None:
    """A reply that never ends: one byte every half second, until the client or the test closes the socket."""
    receiver.dripping.set()
    try:
        for byte in b"HTTP/1.1 200 OK\r\n" + b"X-Slow: y\r\n" * 1000:
            conn.sendall(bytes([byte]))
            if receiver.closing.wait(0.5):
                return
    finally:
        receiver.drip_ended.set()


def redirect_to(url: str) -> Answer:
    def answer(receiver: RawReceiver, conn: socket.socket) -> None:
        conn.sendall(f"HTTP/1.1 302 Found\r\nLocation: {url}\r\nContent-Length: 0\r\n\r\n".encode())

    return answer


@pytest.fixture
def raw_receivers() -> Iterator[Callable[[], RawReceiver]]:
    started: list[RawReceiver] = []

    def start() -> RawReceiver:
        started.append(RawReceiver())
        return started[-1]

    yield start
    for receiver in started:
        receiver.close()


def webhook_app(make_settings: Any, smtp_server: Any, receiver: RawReceiver, **values: Any) -> Any:
    values = {"gateway_webhook_backoff_min": 0.05, **values}
    return queued_app(make_settings, **smtp_server.queued_settings(), gateway_webhook_url=receiver.url,
                      gateway_webhook_secret=SECRET, **values)


def deliveries(queued: Any) -> list[dict[str, Any]]:
    store = MailGateway.state(queued.app).store
    return store.read(lambda conn: [dict(r._mapping) for r in conn.execute(select(webhook_deliveries))])


def sent_to(address: str) -> dict[str, Any]:
    return {**MESSAGE, "to": [address]}


@pytest.mark.parametrize("bad", [garbage, too_many_headers], ids=["not-http", "over-100-header-lines"])
def test_a_malformed_reply_fails_one_attempt_and_later_events_still_go(queued_apps, make_settings, smtp_server,
                                                                       raw_receivers, bad, caplog) -> None:
    receiver = raw_receivers()
    receiver.answers = [bad]
    queued = webhook_app(make_settings, smtp_server, receiver, gateway_webhook_backoff_min=30)
    queued_apps.append(queued)
    queued.send(sent_to("first@example.com"))
    wait_until(lambda: len(receiver.ids()) == 1 and not receiver.answers, "the first event got the bad reply")
    wait_until(lambda: any(d["attempts"] == 1 for d in deliveries(queued)), "the bad reply is recorded")
    [first] = deliveries(queued)
    assert first["status"] == "pending" and first["last_code"] is None and first["last_error"]
    queued.send(sent_to("second@example.com"))  # the receiver is healthy now: the next event reaches it
    wait_until(lambda: len(receiver.ids()) == 2, "the next event is sent")
    assert {e["data"]["recipient"] for _, e in receiver.verified} == {"first@example.com", "second@example.com"}
    assert "Exception in thread" not in caplog.text


def test_a_reply_cut_off_in_its_headers_is_a_failed_attempt(queued_apps, make_settings, smtp_server,
                                                            raw_receivers, caplog) -> None:
    receiver = raw_receivers()
    receiver.answers = [cut_off]
    queued = webhook_app(make_settings, smtp_server, receiver)
    queued_apps.append(queued)
    queued.send()
    wait_until(lambda: len(receiver.ids()) == 2, "the event is sent again after the cut-off reply")
    assert len(set(receiver.ids())) == 1
    wait_until(lambda: deliveries(queued)[0]["status"] == "delivered", "the retry is delivered")
    assert deliveries(queued)[0]["attempts"] == 2
    assert "closed before the end of its headers" in caplog.text


def test_a_dripping_reply_does_not_hold_the_other_events(queued_apps, make_settings, smtp_server,
                                                         raw_receivers) -> None:
    receiver = raw_receivers()
    receiver.answers = [drip]
    queued = webhook_app(make_settings, smtp_server, receiver, gateway_webhook_timeout=300)
    queued_apps.append(queued)
    try:
        queued.send(sent_to("slow@example.com"))
        wait_until(receiver.dripping.is_set, "the first reply drips")
        queued.send(sent_to("next@example.com"))
        wait_until(lambda: receiver.answered_while_dripping, "the next event is answered while the first drips")
        assert receiver.answered_while_dripping[0]["data"]["recipient"] == "next@example.com"
        assert not receiver.drip_ended.is_set()
    finally:
        receiver.close()  # the dripping attempt ends (failed) now, not after its 300 s


def test_a_request_is_bounded_by_the_webhook_timeout_as_a_whole(queued_apps, make_settings, smtp_server,
                                                                raw_receivers, caplog) -> None:
    receiver = raw_receivers()
    receiver.answers = [drip]  # each byte comes well within any per-read timeout
    queued = webhook_app(make_settings, smtp_server, receiver, gateway_webhook_timeout=1)
    queued_apps.append(queued)
    queued.send()
    wait_until(lambda: len(receiver.ids()) == 2, "the event is sent again after the dripping attempt")
    assert len(set(receiver.ids())) == 1
    wait_until(receiver.drip_ended.is_set, "the gateway closed the dripping connection")
    wait_until(lambda: deliveries(queued)[0]["status"] == "delivered", "the retry is delivered")
    assert "no complete reply within 1 s" in caplog.text


def test_a_redirect_is_a_failure_naming_its_location_and_is_never_followed(queued_apps, make_settings, smtp_server,
                                                                          raw_receivers, caplog) -> None:
    elsewhere = raw_receivers()
    receiver = raw_receivers()
    receiver.default = redirect_to(elsewhere.url)
    queued = webhook_app(make_settings, smtp_server, receiver)
    queued_apps.append(queued)
    queued.send()
    wait_until(lambda: len(receiver.ids()) >= 2, "the event is sent again after the redirect")
    wait_until(lambda: deliveries(queued)[0]["attempts"] >= 2, "both redirects are recorded")
    assert elsewhere.hits == []
    [row] = deliveries(queued)
    assert row["status"] == "pending" and row["last_code"] == 302 and elsewhere.url in row["last_error"]
    assert f"302 to {elsewhere.url}" in caplog.text


def test_the_sender_outlives_a_failing_round_and_readiness_says_so(queued_apps, make_settings, smtp_server,
                                                                   raw_receivers) -> None:
    """A clock that fails stands for any fault outside one delivery attempt (none can be provoked for real)."""
    receiver = raw_receivers()
    queued = webhook_app(make_settings, smtp_server, receiver, workers=False)
    queued_apps.append(queued)
    state = MailGateway.state(queued.app)
    broken = threading.Event()
    broken.set()

    def clock() -> float:
        if broken.is_set():
            raise OSError("the clock is unavailable")
        return time.time()

    sender = WebhookSender(state.settings, state.store, clock=clock)
    sender.start()
    try:
        wait_until(lambda: queued.client.get("/readyz").status_code == 503, "readiness reports the failure")
        assert "webhook" in queued.client.get("/readyz").get_json()["detail"]
        broken.clear()
        wait_until(lambda: queued.client.get("/readyz").status_code == 200, "ready again once it goes on")
        event = RecipientEvent("id1", "<m@example.com>", "friend@example.com", "delivered", 250, "ok", 1)
        state.store.write(lambda conn: add_webhooks(conn, receiver.url, [event], time.time()))
        wait_until(lambda: len(receiver.ids()) == 1, "the event is sent by the sender started again")
    finally:
        sender.stop()
