"""What the long-running commands share: loading the configuration, and waiting for a signal to stop."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import TypeVar

import click

from mail_gateway.errors import ConfigurationError

T = TypeVar("T")


def configured(build: Callable[[], T]) -> T:
    """``build()``, or exit with the configuration error in one line (no traceback)."""
    try:
        return build()
    except ConfigurationError as exc:
        raise click.ClickException(f"configuration error: {exc}") from exc


def wait_for_termination() -> None:
    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        stopping.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
