"""SMTP sinks for the benchmarks, run in their own process: ``python -m benchmarks.sink --kind aiosmtpd``.

Two kinds: ``aiosmtpd`` (the library the tests use, a realistic Python server) and ``asyncio``, a minimal
hand-written server that does nothing but answer, so the floor is bounded by the client rather than the
server; it also advertises PIPELINING. ``--latency-ms`` delays every reply, as a remote server would.

The process prints ``READY <port>`` once it listens, then answers ``count`` lines on stdin with the number
of messages it accepted so far, and exits when stdin closes. Every message is counted before its 250 reply
is written, so a client that has its reply is already counted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
from collections import deque

from aiosmtpd.smtp import SMTP

HOST = "127.0.0.1"
received = 0  # messages accepted, read by the control thread


# --- the aiosmtpd sink ---------------------------------------------------------------------------------


class CountingHandler:
    async def handle_DATA(self, server, session, envelope) -> str:
        global received
        received += 1
        return "250 2.0.0 OK queued"


def aiosmtpd_factory(latency: float):
    class DelayedSMTP(SMTP):
        async def push(self, status) -> None:
            # A multi-line reply ("250-...") travels as one packet: only its last line waits.
            line = status if isinstance(status, str) else status.decode("ascii", "replace")
            if latency and line[3:4] != "-":
                await asyncio.sleep(latency)
            await super().push(status)

    def factory() -> SMTP:
        return DelayedSMTP(CountingHandler(), hostname="sink", data_size_limit=None, enable_SMTPUTF8=True)

    return factory


# --- the minimal asyncio sink --------------------------------------------------------------------------

EHLO_REPLY = b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
END_OF_DATA = b"\r\n.\r\n"


class MinimalSink(asyncio.Protocol):
    """Just enough SMTP to accept mail: replies in order, pipelined commands answered as they arrive."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.buffer = bytearray()
        self.in_data = False
        self.scan_from = 0
        self.closing = False
        self.replies: deque[tuple[float, bytes, bool]] = deque()
        self.wakeup = asyncio.Event()

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.loop = asyncio.get_running_loop()
        if self.latency:
            self.writer = self.loop.create_task(self._write_delayed())
        self.reply(b"220 sink ESMTP minimal\r\n")

    def reply(self, data: bytes, close: bool = False) -> None:
        if not self.latency:
            self.transport.write(data)
            if close:
                self.transport.close()
            return
        # Each reply leaves `latency` after its command arrived, in order: a network delay, not a slow server.
        self.replies.append((self.loop.time() + self.latency, data, close))
        self.wakeup.set()

    async def _write_delayed(self) -> None:
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while self.replies:
                due, data, close = self.replies[0]
                wait = due - self.loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                self.replies.popleft()
                if self.transport.is_closing():
                    return
                self.transport.write(data)
                if close:
                    self.transport.close()
                    return

    def connection_lost(self, exc) -> None:
        if self.latency:
            self.writer.cancel()

    def data_received(self, data: bytes) -> None:
        global received
        self.buffer += data
        while self.buffer and not self.closing:
            if self.in_data:
                # The terminator may straddle two reads, so look again from a few bytes back.
                end = self.buffer.find(END_OF_DATA, max(self.scan_from - 4, 0))
                if end < 0:
                    self.scan_from = len(self.buffer)
                    return
                del self.buffer[: end + len(END_OF_DATA)]
                self.in_data, self.scan_from = False, 0
                received += 1
                self.reply(b"250 2.0.0 OK queued\r\n")
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                return
            line = bytes(self.buffer[:end])
            del self.buffer[: end + 2]
            self.command(line)

    def command(self, line: bytes) -> None:
        verb = line[:4].upper()
        if verb == b"EHLO":
            self.reply(EHLO_REPLY)
        elif verb in (b"HELO", b"MAIL", b"RCPT", b"RSET", b"NOOP"):
            self.reply(b"250 OK\r\n")
        elif verb == b"DATA":
            # Data starts right after the command; a message that is empty ends with ".\r\n" alone.
            self.in_data, self.scan_from = True, 0
            self.buffer[0:0] = b"\r\n"
            self.reply(b"354 End data with <CR><LF>.<CR><LF>\r\n")
        elif verb == b"QUIT":
            self.closing = True
            self.reply(b"221 Bye\r\n", close=True)
        else:
            self.reply(b"502 Command not implemented\r\n")


# --- the process ---------------------------------------------------------------------------------------


def answer_control(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    for line in sys.stdin:
        if line.strip() == "count":
            sys.stdout.write(f"{received}\n")
            sys.stdout.flush()
    loop.call_soon_threadsafe(stop.set)


async def serve(kind: str, latency: float) -> None:
    loop = asyncio.get_running_loop()
    if kind == "aiosmtpd":
        server = await loop.create_server(aiosmtpd_factory(latency), HOST, 0)
    else:
        server = await loop.create_server(lambda: MinimalSink(latency), HOST, 0)
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    threading.Thread(target=answer_control, args=(loop, stop), daemon=True).start()
    sys.stdout.write(f"READY {port}\n")
    sys.stdout.flush()
    await stop.wait()
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("aiosmtpd", "asyncio"), default="aiosmtpd")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    asyncio.run(serve(args.kind, args.latency_ms / 1000))


if __name__ == "__main__":
    main()
