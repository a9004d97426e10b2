"""The link check's name lookups, on at most ``LOOKUP_THREADS`` threads at once for the whole process.

A socket's deadline cannot reach a name lookup: ``getaddrinfo`` blocks in the C library for as long as the system's
resolver takes, and Python cannot stop a thread that is inside it. So each lookup runs on a thread of its own and
the link waits for it only until its deadline; a lookup that never returns keeps its thread, and at most
``LOOKUP_THREADS`` can be kept so. While that many are still running, a link needing another is answered at once
(``LookupBusy``) instead of starting one more thread or waiting in a queue behind them.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from mail_gateway.outbox.checks.addresses import InternalAddress, why_internal

LOOKUP_THREADS = 8
AddressInfo = tuple[Any, ...]  # as socket.getaddrinfo lists them: family, type, proto, canonname, sockaddr
Resolve = Callable[..., list[AddressInfo]]  # socket.getaddrinfo's signature


class LookupBusy(OSError):
    """Every lookup thread is still busy; never leaves the link check, which reports it as that link's result."""


class NameLookups:
    """Name lookups on at most ``threads`` threads at once; ``resolve`` is ``socket.getaddrinfo`` unless a test
    gives another (one that never answers, say)."""

    def __init__(self, resolve: Resolve = socket.getaddrinfo, threads: int = LOOKUP_THREADS) -> None:
        self.resolve, self.threads = resolve, threads
        self._free = threading.BoundedSemaphore(threads)

    def addresses(self, host: str, port: int, deadline: float) -> list[AddressInfo]:
        """``host``'s addresses by ``deadline`` (``TimeoutError`` after it), or ``LookupBusy`` at once when every
        thread is taken; an address needs no lookup and no thread."""
        try:
            ipaddress.ip_address(host.strip("[]"))
            return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
        except ValueError:
            pass
        if not self._free.acquire(blocking=False):
            raise LookupBusy(f"name lookup busy: {self.threads} lookups still running")
        answer: Future[list[AddressInfo]] = Future()
        # A daemon thread, not a ThreadPoolExecutor's: those are joined at exit, and a lookup that never returns
        # would keep the process from ending.
        thread = threading.Thread(target=self._run, args=(host, port, answer), name="link-check-lookup", daemon=True)
        try:
            thread.start()
        except BaseException:
            self._free.release()
            raise
        return answer.result(timeout=max(deadline - time.monotonic(), 0.0))  # TimeoutError when it is up

    def _run(self, host: str, port: int, answer: Future[list[AddressInfo]]) -> None:
        try:
            answer.set_result(self.resolve(host, port, type=socket.SOCK_STREAM))
        except BaseException as exc:  # handed to the link waiting for it, if it still is
            answer.set_exception(exc)
        finally:
            self._free.release()

    def connect(self, address: tuple[str, int], deadline: float, *, internal: bool) -> socket.socket:
        """A socket connected to ``address`` by ``deadline``, trying each of its addresses in turn (as
        ``socket.create_connection`` does, with the lookup above); only its public ones unless ``internal``
        (``addresses``: why, and ``InternalAddress`` when it has no other)."""
        host, port = address
        failure: OSError = OSError(f"no address found for {host!r}")
        for family, kind, proto, _, sockaddr in self.addresses(host, port, deadline):
            why = None if internal else why_internal(sockaddr[0])
            if why is not None:
                failure = InternalAddress(host, sockaddr[0], why)
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out")
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(left)
                sock.connect(sockaddr)
                return sock
            except OSError as exc:
                sock.close()
                failure = exc
        raise failure


LOOKUPS = NameLookups()  # the process's: every app and request shares its threads
# An app's own lookups in its app.extensions under this key (a test's resolver) are used instead of LOOKUPS.
LOOKUPS_KEY = "mail_gateway.link_lookups"
