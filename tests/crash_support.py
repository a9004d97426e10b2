"""Helpers of the crash and restart tests: an upstream that can hold replies, clients that keep posting to a
real ``mail-gateway serve``, and what arrived upstream counted by Message-ID."""

from __future__ import annotations

import asyncio
import http.client
import re
import threading
import urllib.error
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from process_support import Process, gateway_env, request
from queue_support import MESSAGE
from smtp_server import HOST, RecordingHandler

_MESSAGE_ID = re.compile(rb"^Message-ID: *(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)


@dataclass
class HoldingHandler(RecordingHandler):
    """Records each message at its final dot, then, while ``hold`` is set, keeps its reply back: a delivery the
    upstream took but the gateway has not heard about. ``delay`` slows every reply a little."""

    hold: threading.Event = field(default_factory=threading.Event)
    delay: float = 0.0
    holding: int = 0  # replies held back right now

    async def handle_DATA(self, server, session, envelope):
        await super().handle_DATA(server, session, envelope)
        self.holding += 1
        try:
            while self.hold.is_set():
                await asyncio.sleep(0.02)
        finally:
            self.holding -= 1
        await asyncio.sleep(self.delay)
        return "250 2.0.0 OK queued"


def arrivals(handler: RecordingHandler) -> Counter[str]:
    """How many times each Message-ID reached the upstream."""
    found: Counter[str] = Counter()
    for message in list(handler.messages):
        match = _MESSAGE_ID.search(message.data)
        assert match is not None, message.data[:300]
        found[match.group(1).decode()] += 1
    return found


def queue_env(tmp_path: Path, upstream_port: int, **more: Any) -> dict[str, str]:
    """Queued delivery to a loopback upstream with small backoffs and a one-second lease."""
    values: dict[str, Any] = {
        "gateway_env": "testing", "gateway_delivery": "queued", "gateway_store_url": f"sqlite:///{tmp_path}/store.db",
        "gateway_queue_lease": 1, "gateway_queue_backoff_min": 0.05, "gateway_queue_backoff_max": 0.2,
        "gateway_queue_workers": 4, "mail_backend": "smtp", "mail_server": HOST, "mail_port": upstream_port,
        "mail_timeout": 5}
    return gateway_env(**{**values, **more})


def start_worker(env: dict[str, str], cwd: Path, *args: str) -> Process:
    worker = Process(["worker", *args], env, cwd, http=False)
    wait_for_output(worker, "delivery workers")
    return worker


def wait_for_output(process: Process, text: str, timeout: float = 30) -> None:
    from ingress_support import wait_until

    def printed() -> bool:
        assert process.proc.poll() is None or text in process.output(), f"the process exited:\n{process.output()}"
        return text in process.output()

    wait_until(printed, f"the process printed {text!r}", timeout)


class Clients:
    """Threads that post one message after another to ``port`` until stopped, or until the server is gone;
    ``answered`` maps the Message-ID of every message answered 202 to the gateway's id."""

    def __init__(self, port: int, threads: int = 4) -> None:
        self.port = port
        self.answered: dict[str, str] = {}
        self.unanswered = 0  # requests that got no answer: their message may or may not be stored
        self.refused: list[tuple[int, dict[str, Any]]] = []  # any answer but 202 (none is expected)
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._post, args=(n,), daemon=True) for n in range(threads)]
        for thread in self._threads:
            thread.start()

    def _post(self, client: int) -> None:
        sent = 0
        while not self.stopping.is_set():
            sent += 1
            payload = {**MESSAGE, "subject": f"client {client} message {sent}"}
            try:
                status, body, _ = request(self.port, "POST", "/v1/messages", payload, timeout=10)
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError):
                with self._lock:
                    self.unanswered += 1
                self.stopping.wait(0.05)
                continue
            with self._lock:
                if status == 202:
                    self.answered[body["message_id"]] = body["id"]
                else:
                    self.refused.append((status, body))

    def count(self) -> int:
        with self._lock:
            return len(self.answered)

    def stop(self) -> dict[str, str]:
        self.stopping.set()
        for thread in self._threads:
            thread.join(20)
        return dict(self.answered)


def events_of(port: int, message_id: str) -> list[str]:
    status, body, _ = request(port, "GET", f"/v1/messages/{message_id}")
    assert status == 200, body
    return [event["type"] for event in body["events"]]


def status_of(port: int, message_id: str) -> str:
    status, body, _ = request(port, "GET", f"/v1/messages/{message_id}")
    assert status == 200, body
    return body["status"]
