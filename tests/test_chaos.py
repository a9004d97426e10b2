"""Chaos: two ``serve`` processes and three ``worker`` processes on one PostgreSQL, 2,000 messages through both
HTTP processes, an upstream that answers 451 to about one transaction in ten and drops the connection after the
final dot in about one in a hundred, and a worker killed with ``kill -9`` each time another 300 messages have
arrived, then restarted.

The kills follow delivery progress, not the clock: when a milestone is reached the upstream holds its replies
until that kill has happened, so every planned kill lands while messages are in flight however fast the machine
drains the queue.

Every message answered 202 must arrive. A message may arrive twice only where the store recorded an attempt as
outcome-unknown (a reply lost after the final dot, or a worker that died holding the message); the test counts
both. Bounded: it gives up after a few minutes, and asserts what arrived, never how fast.

A second round faults the store instead: the PostgreSQL server stopped for longer than a lease once 600 messages
have arrived, and a reply holding a NUL, which PostgreSQL cannot store as it is, to every hundredth message. Every
message must arrive under the same rule, and every outcome be recorded in the end.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from api_helpers import HELLO
from ingress_support import wait_until
from postgres_server import PostgresServer
from process_support import Process, request
from smtp_server import HOST, Received, RecordingHandler
from test_scale_out import queued_env

MESSAGES = 2000
CLIENTS = 8
KILL_EVERY = 300  # messages arrived upstream between two kill -9 of a worker
KILLS = 4  # planned: the last milestone (1,200) is well short of the 2,000 messages


class Milestones:
    """Runs ``action(n)`` each time another ``every`` messages have arrived at the upstream, ``times`` times in
    all, on a thread of its own. From the moment a milestone is reached until its action has returned, the upstream
    holds its replies (``await milestones.hold()``), so no delivery outruns the action: the actions happen at the
    same points of progress on any machine. ``stop()`` opens the upstream for good (also when a wait runs out)."""

    def __init__(self, every: int, times: int, action: Callable[[int], None], timeout: float = 240) -> None:
        self.every, self.times, self.action, self.timeout = every, times, action, timeout
        self.arrived = self.done = 0
        self.stopped = threading.Event()
        self._reached = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Milestones:
        self._thread.start()
        return self

    def arrive(self) -> None:
        with self._reached:
            self.arrived += 1
            self._reached.notify_all()

    def holding(self) -> bool:
        return not self.stopped.is_set() and self.done < self.times and self.arrived >= (self.done + 1) * self.every

    async def hold(self) -> None:
        while self.holding():
            await asyncio.sleep(0.01)

    def _run(self) -> None:
        try:
            for n in range(self.times):
                if not self._wait_for(n + 1):
                    return
                self.action(n)
                self.done += 1
        finally:
            self.stopped.set()  # never leave the upstream held, whatever happened

    def _wait_for(self, milestone: int) -> bool:
        """Whether ``milestone`` was reached (False once stopped, or when the wait runs out)."""
        with self._reached:
            self._reached.wait_for(lambda: self.stopped.is_set() or self.arrived >= milestone * self.every,
                                   self.timeout)
            return not self.stopped.is_set() and self.arrived >= milestone * self.every

    def stop(self) -> None:
        with self._reached:
            self.stopped.set()
            self._reached.notify_all()
        self._thread.join(60)


class ChaosHandler(RecordingHandler):
    """451 to about one transaction in ten; about one in a hundred taken, then the connection dropped before the
    reply. Seeded, so a failure can be replayed. Each message taken counts towards ``milestones``, and every reply
    waits while a milestone's action is due."""

    def __init__(self) -> None:
        super().__init__()
        self.random = random.Random(15)
        self.refused = self.dropped = 0
        self.milestones: Milestones | None = None

    async def handle_DATA(self, server, session, envelope):
        draw = self.random.random()
        if draw >= 0.10:
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content,
                                          session.peer))
            if self.milestones is not None:
                self.milestones.arrive()
        if self.milestones is not None:
            await self.milestones.hold()
        if draw < 0.10:
            self.refused += 1
            return "451 4.3.0 Try again later"
        if draw < 0.11:
            self.dropped += 1
            server.transport.close()
            return "421 closing"  # never reaches the closed connection
        return "250 2.0.0 OK queued"


def message_id(data: bytes) -> str:
    return data.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0].decode()


def send_all(ports: list[int]) -> tuple[list[dict], list[tuple[int, dict]]]:
    """Every message once, through both HTTP processes, on keep-alive connections; the 202 answers, and any
    other answer with its status (none is expected: kept to say why, should one come)."""
    refused: list[tuple[int, dict]] = []

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
            else:
                refused.append((response.status, answer))
        conn.close()
        return answers

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        return [answer for batch in pool.map(client, range(CLIENTS)) for answer in batch], refused


def test_kill_9_of_workers_and_a_flaky_upstream_lose_nothing(postgres_url, smtp_server_factory, tmp_path) -> None:
    upstream = smtp_server_factory(ChaosHandler())
    env = queued_env(postgres_url, upstream.port, gateway_queue_lease=1, gateway_queue_workers=4,
                     gateway_queue_poll_interval=0.5)
    serves = [Process(["serve", "--no-worker"], env, tmp_path) for _ in range(2)]
    workers = [Process(["worker"], env, tmp_path, http=False) for _ in range(3)]
    chooser = random.Random(9)

    def kill_a_worker(_: int) -> None:
        n = chooser.randrange(len(workers))
        workers[n].kill()
        workers[n].stop()
        workers[n] = Process(["worker"], env, tmp_path, http=False)

    kills = upstream.handler.milestones = Milestones(KILL_EVERY, KILLS, kill_a_worker)
    try:
        kills.start()
        accepted, refused = send_all([s.port for s in serves])
        assert len(accepted) == MESSAGES, refused[:1]  # the store took every one: nothing to refuse here
        wanted = {a["message_id"] for a in accepted}
        wait_until(lambda: wanted <= {message_id(m.data) for m in list(upstream.messages)},
                   "every message answered 202 arrived", timeout=240)
        kills.stop()
        arrivals = Counter(message_id(m.data) for m in list(upstream.messages))
        twice = [a for a in accepted if arrivals[a["message_id"]] > 1]
        histories = {a["id"]: request(serves[0].port, "GET", f"/v1/messages/{a['id']}")[1] for a in twice}
    finally:
        kills.stop()
        for process in workers + serves:
            process.stop()
    unknown = {i for i, found in histories.items() if any(e["type"] == "unknown" for e in found["events"])}
    print(f"chaos: {MESSAGES} accepted, {len(upstream.messages)} arrivals, {len(twice)} arrived more than once, "
          f"{kills.done} workers killed, {upstream.handler.refused} transactions refused with 451, "
          f"{upstream.handler.dropped} dropped after the final dot")
    assert kills.done == KILLS and upstream.handler.refused > 0 and upstream.handler.dropped > 0
    assert set(histories) == unknown, "a message arrived twice without an attempt recorded as outcome-unknown"


# -- a store fault: the PostgreSQL server stopped mid-run, and replies whose text it cannot store -------------------

OUTAGE_AT = 600  # messages arrived upstream when the store goes away
UNSTORABLE = "550 5.1.1 no\x00such user"  # PostgreSQL refuses a NUL in text


def unstorable(data: bytes) -> bool:
    """Chaos 7, 107, 207...: the messages the upstream refuses with a reply the store cannot hold as it is."""
    return int(data.split(b"Subject: Chaos ", 1)[1].split(b"\r\n", 1)[0]) % 100 == 7


class UnstorableReplyHandler(ChaosHandler):
    """``ChaosHandler``, and a 550 whose text holds a NUL to every hundredth message, which the upstream takes."""

    async def handle_DATA(self, server, session, envelope):
        if not unstorable(envelope.content):
            return await super().handle_DATA(server, session, envelope)
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, session.peer))
        if self.milestones is not None:
            self.milestones.arrive()
            await self.milestones.hold()
        return UNSTORABLE


class Outage:
    """The milestone's action: once every message is posted, stop the PostgreSQL server, and start it again on a
    thread of its own once every worker has found it gone and two leases have passed. The deliveries in flight
    finish meanwhile, so their outcomes wait to be recorded for longer than a lease."""

    def __init__(self, server: PostgresServer, workers: list[Process], lease: float) -> None:
        self.server, self.workers, self.lease = server, workers, lease
        self.posted, self.ended = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None

    def begin(self, _: int) -> None:
        assert self.posted.wait(240), "the messages were not all posted"
        noticed = [w.output().count("could not") for w in self.workers]
        self.server.pause()
        self._thread = threading.Thread(target=self._end, args=(time.monotonic(), noticed), daemon=True)
        self._thread.start()

    def _end(self, began: float, noticed: list[int]) -> None:
        try:
            wait_until(lambda: time.monotonic() > began + 2 * self.lease and all(
                w.output().count("could not") > n for w, n in zip(self.workers, noticed, strict=True)),
                "every worker found the store gone", timeout=60)
        finally:
            self.server.resume()
            self.ended.set()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join(120)


def finished(port: int) -> int:
    """How many messages have their outcome recorded: delivered, or bounced (the unstorable replies)."""
    return sum(request(port, "GET", f"/v1/messages?status={status}&limit=1")[1]["total"]
               for status in ("delivered", "bounced"))


def test_a_store_outage_and_replies_it_cannot_store_lose_nothing(postgres, postgres_url, smtp_server_factory,
                                                                tmp_path) -> None:
    upstream = smtp_server_factory(UnstorableReplyHandler())
    env = queued_env(postgres_url, upstream.port, gateway_queue_lease=1, gateway_queue_workers=4,
                     gateway_queue_poll_interval=0.5)
    serves = [Process(["serve", "--no-worker"], env, tmp_path) for _ in range(2)]
    workers = [Process(["worker"], env, tmp_path, http=False) for _ in range(3)]
    outage = Outage(postgres, workers, lease=1)
    milestones = upstream.handler.milestones = Milestones(OUTAGE_AT, 1, outage.begin)
    try:
        milestones.start()
        accepted, refused = send_all([s.port for s in serves])
        outage.posted.set()
        assert len(accepted) == MESSAGES, refused[:1]
        wanted = {a["message_id"] for a in accepted}
        wait_until(lambda: wanted <= {message_id(m.data) for m in list(upstream.messages)},
                   "every message answered 202 arrived", timeout=240)
        milestones.stop()
        outage.join()
        wait_until(lambda: finished(serves[0].port) == len(accepted), "every outcome recorded", timeout=120)
        arrivals = Counter(message_id(m.data) for m in list(upstream.messages))
        twice = [a for a in accepted if arrivals[a["message_id"]] > 1]
        histories = {a["id"]: request(serves[0].port, "GET", f"/v1/messages/{a['id']}")[1] for a in twice}
        refused_ids = {message_id(m.data) for m in list(upstream.messages) if unstorable(m.data)}
        bounced = [request(serves[0].port, "GET", f"/v1/messages/{a['id']}")[1] for a in accepted
                   if a["message_id"] in refused_ids]
    finally:
        milestones.stop()
        outage.join()
        for process in workers + serves:
            process.stop()
    unknown = {i for i, found in histories.items() if any(e["type"] == "unknown" for e in found["events"])}
    print(f"chaos, store: {MESSAGES} accepted, {len(upstream.messages)} arrivals, {len(twice)} arrived more than "
          f"once, {len(bounced)} replies with a NUL")
    assert outage.ended.is_set() and bounced
    assert all(m["status"] == "bounced" and "no\\x00such user" in m["recipients"][0]["reason"] for m in bounced)
    assert set(histories) == unknown, "a message arrived twice without an attempt recorded as outcome-unknown"
