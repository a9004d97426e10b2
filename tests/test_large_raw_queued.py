"""Large raw messages in queued mode, through a real ``mail-gateway serve`` (SQLite store) to a real upstream over
loopback: how much memory the process takes for them, that each arrives intact, and that the store gives their
space back once they are delivered."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import random
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from crash_support import queue_env
from flask import Flask
from ingress_support import wait_until
from process_support import Process, request
from smtp_server import HOST, RecordingHandler, SmtpServer

from mail_gateway.http.idempotency import LARGE_BODY, canonical_pieces, request_fingerprint
from mail_gateway.store import claims, messages
from mail_gateway.store.blobs import IN_PLACE_BYTES
from mail_gateway.store.claims import PREFETCH_BYTES
from mail_gateway.store.database import Store

MIB = 1024 * 1024
LARGE = 30 * MIB
_DATE_LINE = re.compile(rb"\ADate: [^\r\n]+\r\n")


def raw_message(seed: int, size: int) -> bytes:
    """About ``size`` bytes: a text part and a base64 attachment of random bytes. No Date field, so the gateway
    adds one in front; lines of 988 octets, within RFC 5322's 998, so the upstream reads few lines."""
    head = (f"From: app@example.com\r\nTo: friend@example.com\r\nSubject: large {seed}\r\n"
            f"Message-ID: <large-{seed}@example.com>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=part\r\n\r\n--part\r\nContent-Type: text/plain\r\n\r\n"
            "Attached.\r\n--part\r\nContent-Type: application/octet-stream\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n").encode()
    tail = b"\r\n--part--\r\n"
    line = 741  # raw bytes per line: 988 base64 characters
    raw = random.Random(seed).randbytes((size - len(head) - len(tail)) // 990 * line)
    encoded = base64.b64encode(raw)
    lines = b"\r\n".join(encoded[i:i + 988] for i in range(0, len(encoded), 988))
    return head + lines + tail


def raw_body(data: bytes) -> bytes:
    return json.dumps({"mail_from": "app@example.com", "rcpt_to": ["friend@example.com"],
                       "data": base64.b64encode(data).decode("ascii")}).encode()


def post_raw(port: int, body: bytes) -> tuple[int, dict]:
    """The answer, after retrying the 503s a client is told to retry: on a busy disk, a durable write of 30 MB
    can take long enough that the next one's turn at the store comes too late."""
    for _ in range(5):
        conn = http.client.HTTPConnection(HOST, port, timeout=120)
        try:
            conn.request("POST", "/v1/messages/raw", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            status, answer = response.status, json.loads(response.read())
        finally:
            conn.close()
        if status != 503:
            break
    return status, answer


def post_all(port: int, bodies: list[bytes]) -> list[dict]:
    """Every body at once, each on its own connection; the answers in order."""
    answers: list[tuple[int, dict] | BaseException | None] = [None] * len(bodies)

    def send(index: int) -> None:
        try:
            answers[index] = post_raw(port, bodies[index])
        except BaseException as exc:  # reported below, in the test's own thread
            answers[index] = exc

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    for answer in answers:
        assert isinstance(answer, tuple) and answer[0] == 202, answer
    return [answer[1] for answer in answers]  # type: ignore[index]


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"/proc/{pid}/status has no {field}")


def wait_for_rss(pid: int, below: float) -> None:
    try:
        wait_until(lambda: status_kib(pid, "VmRSS") * 1024 < below, "the process gives the memory back", timeout=10)
    except AssertionError:
        excess = status_kib(pid, "VmRSS") * 1024 - below
        raise AssertionError(f"the process keeps {excess / MIB:.0f} MiB more memory than it may") from None


def store_bytes(path: Path) -> int:
    """The store's file and its write-ahead log, as they take space on the disk."""
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def bodies_of(path: Path, ids: list[str]) -> int:
    with closing(sqlite3.connect(path)) as conn:
        marks = ",".join("?" * len(ids))
        return conn.execute(f"SELECT count(*) FROM bodies WHERE message_id IN ({marks})", ids).fetchone()[0]


def delivered(port: int, ids: list[str]) -> bool:
    return all(request(port, "GET", f"/v1/messages/{i}")[1]["status"] == "delivered" for i in ids)


def assert_arrived_intact(upstream: SmtpServer, sent: list[bytes]) -> None:
    """Each message arrived once, byte for byte as sent after the Date field the gateway put in front."""
    arrived = sorted(hashlib.sha256(_DATE_LINE.sub(b"", m.data, count=1)).hexdigest() for m in upstream.messages)
    assert arrived == sorted(hashlib.sha256(data).hexdigest() for data in sent)


@pytest.fixture
def upstream() -> Iterator[SmtpServer]:
    server = SmtpServer(RecordingHandler(), data_size_limit=64 * MIB)
    yield server
    server.stop()


def start_serve(tmp_path: Path, upstream: SmtpServer, **more: object) -> Process:
    env = queue_env(tmp_path, upstream.port, gateway_max_message_bytes=64 * MIB, mail_timeout=60,
                    gateway_queue_lease=30, **more)
    return Process(["serve"], env, tmp_path)


def test_four_large_raw_messages_at_once_take_a_few_copies_of_their_size_and_give_it_back(
        tmp_path: Path, upstream: SmtpServer) -> None:
    sent = [raw_message(seed, LARGE) for seed in range(4)]
    total = sum(len(data) for data in sent)
    bodies = [raw_body(data) for data in sent]
    serve = start_serve(tmp_path, upstream)
    try:
        pid = serve.proc.pid
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak from here on, not start-up's
        before = status_kib(pid, "VmRSS") * 1024
        ids = [answer["id"] for answer in post_all(serve.port, bodies)]
        wait_until(lambda: delivered(serve.port, ids), "every message is delivered", timeout=120)
        peak = status_kib(pid, "VmHWM") * 1024 - before
        # Each request's JSON carries its message as base64, 4/3 of its size, and a JSON parser needs two copies
        # of that at once. Measured: a peak of 4.4 to 4.6 times the messages' total before the bodies were streamed
        # into the store and out of it (and a few other whole copies went), 2.5 to 2.7 times since.
        assert peak < 3.5 * total, f"the peak grew by {peak / MIB:.0f} MiB for {total / MIB:.0f} MiB of messages"
        # Measured, once they were delivered: without the fixed mmap threshold (gateway/cli/allocator.py) 132 MiB
        # more than before the messages came (glibc kept the freed copies); with it 12 MiB, and once, on a CI run,
        # 71 MiB. The bound, the messages' own size, leaves room for that spread and still fails the old allocator.
        # The last delivery thread lets go of its body just after its outcome is recorded.
        wait_for_rss(pid, below=before + total)
    finally:
        serve.stop()
    assert_arrived_intact(upstream, sent)


def test_a_large_raw_message_with_an_idempotency_key_takes_no_more_memory_than_without(
        tmp_path: Path, upstream: SmtpServer) -> None:
    sent = raw_message(7, LARGE)
    body = raw_body(sent)
    serve = start_serve(tmp_path, upstream)
    try:
        pid = serve.proc.pid
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        before = status_kib(pid, "VmRSS") * 1024
        conn = http.client.HTTPConnection(HOST, serve.port, timeout=120)
        try:
            conn.request("POST", "/v1/messages/raw", body,
                         {"Content-Type": "application/json", "Idempotency-Key": "large-1"})
            response = conn.getresponse()
            assert response.status == 202, response.read()
            message_id = json.loads(response.read())["id"]
        finally:
            conn.close()
        wait_until(lambda: delivered(serve.port, [message_id]), "the message is delivered", timeout=60)
        peak = status_kib(pid, "VmHWM") * 1024 - before
    finally:
        serve.stop()
    assert_arrived_intact(upstream, [sent])
    # Measured: 5.3 times the message's size while the request's fingerprint was its canonical JSON built whole
    # and encoded, 2.6 times (as without a key) since it is hashed in pieces.
    assert peak < 3.5 * len(sent), f"the peak grew by {peak / MIB:.0f} MiB for a {len(sent) / MIB:.0f} MiB message"


def test_the_store_gives_back_the_space_of_delivered_bodies(tmp_path: Path, upstream: SmtpServer) -> None:
    sent = [raw_message(seed, 4 * MIB) for seed in range(3)]
    store = tmp_path / "store.db"
    serve = start_serve(tmp_path, upstream, gateway_store_compact_interval=0.2)
    try:
        ids = [answer["id"] for answer in post_all(serve.port, [raw_body(data) for data in sent])]
        wait_until(lambda: delivered(serve.port, ids), "every message is delivered", timeout=60)
        assert bodies_of(store, ids) == 0  # a delivered message keeps its status and history, not its body
        assert request(serve.port, "GET", f"/v1/messages/{ids[0]}")[1]["size"] > 4 * MIB - 4096
        wait_until(lambda: store_bytes(store) < MIB, "the store's file and log shrink below 1 MiB", timeout=30)
    finally:
        serve.stop()
    assert_arrived_intact(upstream, sent)


def test_a_store_file_made_without_a_page_map_gets_one_when_the_gateway_opens_it(tmp_path: Path) -> None:
    path = tmp_path / "earlier.db"
    with closing(sqlite3.connect(path)) as conn:  # as earlier versions made their files: no auto_vacuum
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE idempotency_keys (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, "
                     "created REAL NOT NULL, status INTEGER, mimetype TEXT, body BLOB)")
        conn.execute("INSERT INTO idempotency_keys VALUES ('k', 'f', 1.0, 202, 'text/plain', zeroblob(4194304))")
        conn.commit()
        conn.execute("DELETE FROM idempotency_keys")
        conn.commit()
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
    store = Store(f"sqlite:///{path}").open()
    store.close()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # INCREMENTAL: free pages can be cut off
        assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0


def test_bodies_of_every_size_come_back_from_the_store_as_they_went_in(store_url: str) -> None:
    # Around the sizes where a body stops coming with its claim and starts being written in place.
    sizes = [1, PREFETCH_BYTES, PREFETCH_BYTES + 1, IN_PLACE_BYTES - 1, IN_PLACE_BYTES, 3 * MIB + 5]
    new = [messages.NewMessage(messages.new_id(), f"<{n}@example.com>", "app@example.com", ("a@example.com",),
                               random.Random(n).randbytes(size), "http", 1000.0, None, 2000.0)
           for n, size in enumerate(sizes)]
    store = Store(store_url).open()
    store.write(lambda conn: messages.enqueue(conn, new))
    found = store.write(lambda conn: claims.claim(conn, now=1000.0, limit=len(new), lease=30))
    sent = {m.id: m.data for m in new}
    for claimed in found:
        data = claimed.data if claimed.data is not None else store.read(lambda conn, i=claimed.id: claims.body(conn, i))
        assert data == sent[claimed.id], len(sent[claimed.id])
    assert len(found) == len(new)


@pytest.mark.parametrize("payload", [
    {"data": "QUJD" * 40_000, "rcpt_to": ["a@example.com"], "mail_from": "b@example.com"},
    {"messages": [{"text": 'x"\\\n\t\u00e9\U0001f600\x01' * 20_000, "n": 1.5, "ok": True, "none": None}, []]},
    {"z": {}, "a": [1, -2, 3e300, "é"], "m": {"b": "y" * 65_536, "a": "y" * 65_537}},
])
def test_a_large_body_is_fingerprinted_in_pieces_as_it_is_whole(payload: dict) -> None:
    app = Flask(__name__)
    fingerprints = []
    for length in (10, LARGE_BODY + 1):  # hashed whole, then in pieces
        with app.test_request_context("/v1/messages/raw", method="POST", headers={"Content-Length": str(length)}):
            fingerprints.append(request_fingerprint(payload))
    assert fingerprints[0] == fingerprints[1]
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert "".join(canonical_pieces(payload)) == canonical
