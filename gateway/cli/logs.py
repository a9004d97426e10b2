"""Logging for the long-running commands: request threads hand records to a queue, one thread writes them.

Written to stderr directly, every record takes the stream's lock and a flush on the request thread; under
load the benchmark showed a fifth of worker time waiting on that lock.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_logging(level: int = logging.INFO) -> None:
    root = logging.getLogger()
    if any(isinstance(h, logging.handlers.QueueHandler) for h in root.handlers):
        return
    writer = logging.StreamHandler(sys.stderr)
    writer.setFormatter(logging.Formatter(FORMAT))
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(records, writer, respect_handler_level=True)
    root.addHandler(logging.handlers.QueueHandler(records))
    root.setLevel(level)
    listener.start()
    atexit.register(listener.stop)  # flushes what is queued when the process exits
