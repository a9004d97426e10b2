"""Logging for the long-running commands: request threads hand records to a queue, one thread writes them.

Measured under load (``make bench``), logging one line per delivered message cost the HTTP service a sixth of
its throughput with the standard library's pieces: ``QueueHandler`` formats each record (its time stamp
included) on the request thread, and ``QueueListener`` writes and flushes once per record. Here the request
thread only enqueues the record, and the writer thread formats whatever has queued up and writes it with one
write and one flush. The gateway's log arguments are plain strings and numbers, so formatting later is safe.
"""

from __future__ import annotations

import atexit
import logging
import queue
import sys
import threading
from typing import TextIO

from mail_gateway.lifecycle import Loop

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
_STOP = logging.makeLogRecord({"msg": "stop"})
_GATHER_SECONDS = 0.1


class _HandOver(logging.Handler):
    def __init__(self, records: queue.SimpleQueue[logging.LogRecord]) -> None:
        super().__init__()
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.put(record)


def _write(records: queue.SimpleQueue[logging.LogRecord], stream: TextIO, formatter: logging.Formatter,
           stopping: threading.Event) -> bool:
    """Write what has queued up; True once the stop marker was among it."""
    batch = [records.get()]
    # Waking for every record would take the GIL from the request threads once per line; a short pause
    # lets a busy gateway's lines gather, and keeps the log at most a tenth of a second behind.
    stopping.wait(_GATHER_SECONDS)
    while True:
        try:
            batch.append(records.get_nowait())
        except queue.Empty:
            break
    lines = [formatter.format(record) for record in batch if record is not _STOP]
    if lines:
        try:
            stream.write("\n".join(lines) + "\n")
            stream.flush()
        except (OSError, ValueError):  # stderr closed: nothing else can be told
            pass
    return any(record is _STOP for record in batch)


def configure_logging(level: int = logging.INFO, *, processes: bool = False) -> None:
    """Start the writer thread; call it in the process that logs (after a fork, never before: a thread does not
    survive one). ``processes``: several processes share the output, so each line names its process."""
    root = logging.getLogger()
    if any(isinstance(h, _HandOver) for h in root.handlers):
        return
    # The thread and source line of a record are never shown; not looking them up saves time on every line (the
    # logging HOWTO's "Optimization" section). So is the process, unless several share the output (gunicorn's
    # own lines show it too).
    logging.logMultiprocessing = logging.logThreads = False
    logging.logProcesses = processes
    logging._srcfile = None  # type: ignore[attr-defined]
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    line = FORMAT.replace("%(name)s", "[%(process)d] %(name)s") if processes else FORMAT
    stream, formatter, stopping = sys.stderr, logging.Formatter(line), threading.Event()
    # Until its step takes the stop marker: what is queued is written before the process ends.
    writer = Loop("log-writer", lambda: _write(records, stream, formatter, stopping), stopping=stopping,
                  wake=lambda: records.put(_STOP), retry=0.0, until_done=True)
    root.addHandler(_HandOver(records))
    root.setLevel(level)
    writer.start()
    atexit.register(writer.stop, 5)
