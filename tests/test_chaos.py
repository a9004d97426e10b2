"""Chaos: two ``serve`` processes and three ``worker`` processes on one PostgreSQL, 2,000 messages through both
HTTP processes, an upstream that answers 451 to about one transaction in ten and drops the connection after the
final dot in about one in a hundred, and a worker killed with ``kill -9`` every few seconds and restarted.

Every message answered 202 must arrive. A message may arrive twice only where the store recorded an attempt as
outcome-unknown (a reply lost after the final dot, or a worker that died holding the message); the test counts
both. Bounded: it gives up after a few minutes, and asserts what arrived, never how fast.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from api_helpers import HELLO
from ingress_support import wait_until
from process_support import Process, request
from smtp_server import HOST, Received, RecordingHandler
from test_scale_out import queued_env

MESSAGES = 2000
CLIENTS = 8
KILL_EVERY = 3.0  # seconds between kill -9 of a worker


class ChaosHandler(RecordingHandler):
    """451 to about one transaction in ten; about one in a hundred taken, then the connection dropped before the
    reply. Seeded, so a failure can be replayed."""

    def __init__(self) -> None:
        super().__init__()
        self.random = random.Random(15)
        self.refused = self.dropped = 0

    async def handle_DATA(self, server, session, envelope):
        draw = self.random.random()
        if draw < 0.10:
            self.refused += 1
            return "451 4.3.0 Try again later"
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, session.peer))
        if draw < 0.11:
            self.dropped += 1
            server.transport.close()
            return "421 closing"  # never reaches the closed connection
        return "250 2.0.0 OK queued"


def message_id(data: bytes) -> str:
    return data.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0].decode()


def send_all(ports: list[int]) -> list[dict]:
    """Every message once, through both HTTP processes, on keep-alive connections; the 202 answers."""
    def client(n: int) -> list[dict]:
        conn = http.client.HTTPConnection(HOST, ports[n % len(ports)], timeout=30)
        answers = []
        for i in range(n, MESSAGES, CLIENTS):
            body = json.dumps({**HELLO, "subject": f"Chaos {i}"})
            conn.request("POST", "/v1/messages", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            answer = json.loads(response.read())
            if response.status == 202:
                answers.append(answer)
        conn.close()
        return answers

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        return [answer for batch in pool.map(client, range(CLIENTS)) for answer in batch]


def test_kill_9_of_workers_and_a_flaky_upstream_lose_nothing(postgres_url, smtp_server_factory, tmp_path) -> None:
    upstream = smtp_server_factory(ChaosHandler())
    env = queued_env(postgres_url, upstream.port, gateway_queue_lease=1, gateway_queue_workers=4,
                     gateway_queue_poll_interval=0.5)
    serves = [Process(["serve", "--no-worker"], env, tmp_path) for _ in range(2)]
    workers = [Process(["worker"], env, tmp_path, http=False) for _ in range(3)]
    stop, kills = threading.Event(), Counter()

    def killer() -> None:
        chooser = random.Random(9)
        while not stop.wait(KILL_EVERY):
            n = chooser.randrange(len(workers))
            workers[n].kill()
            workers[n].stop()
            kills["kill -9"] += 1
            workers[n] = Process(["worker"], env, tmp_path, http=False)

    chaos = threading.Thread(target=killer, daemon=True)
    try:
        chaos.start()
        accepted = send_all([s.port for s in serves])
        assert len(accepted) == MESSAGES  # the store took every one: nothing to refuse here
        wanted = {a["message_id"] for a in accepted}
        wait_until(lambda: wanted <= {message_id(m.data) for m in list(upstream.messages)},
                   "every message answered 202 arrived", timeout=240)
        stop.set()
        chaos.join(60)
        arrivals = Counter(message_id(m.data) for m in list(upstream.messages))
        twice = [a for a in accepted if arrivals[a["message_id"]] > 1]
        histories = {a["id"]: request(serves[0].port, "GET", f"/v1/messages/{a['id']}")[1] for a in twice}
    finally:
        stop.set()
        for process in workers + serves:
            process.stop()
    unknown = {i for i, found in histories.items() if any(e["type"] == "unknown" for e in found["events"])}
    print(f"chaos: {MESSAGES} accepted, {len(upstream.messages)} arrivals, {len(twice)} arrived more than once, "
          f"{kills['kill -9']} workers killed, {upstream.handler.refused} transactions refused with 451, "
          f"{upstream.handler.dropped} dropped after the final dot")
    assert kills["kill -9"] >= 2 and upstream.handler.refused > 0 and upstream.handler.dropped > 0
    assert set(histories) == unknown, "a message arrived twice without an attempt recorded as outcome-unknown"
