"""Peak memory of sending one message with a large attachment, in a fresh process per sender.

``python -m benchmarks.scenarios.attachment <sender> --port P --mb 20`` prints one JSON line: the resident
memory before the send (the attachment's bytes already loaded, as a caller would hold them), the peak
during it, and how many messages the sender reports accepted. The growth is what sending costs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import ExitStack
from pathlib import Path

from benchmarks import payload
from benchmarks.scenarios.library import _gateway_backend, _mailman_app

STATUS = Path("/proc/self/status")


def rss_kib(field: str) -> int:
    for line in STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in {STATUS}")


def reset_peak() -> None:
    """Make VmHWM start again from the current RSS (Linux: write 5 to clear_refs)."""
    Path("/proc/self/clear_refs").write_text("5")


def message(attachment: bytes, connection=None):
    from flask_mailman import EmailMessage

    msg = EmailMessage(payload.SUBJECT, payload.TEXT, payload.SENDER, [payload.RECIPIENT], connection=connection)
    msg.attach("attachment.bin", attachment, "application/octet-stream")
    return msg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sender", choices=("gateway-library", "flask-mailman-held"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mb", type=float, default=20)
    parser.add_argument("--settings", default="{}")
    args = parser.parse_args()
    with ExitStack() as stack:
        if args.sender == "gateway-library":
            backend = _gateway_backend(args.port, stack, json.loads(args.settings))

            def send(attachment: bytes) -> int:
                return len(backend.send_messages([message(attachment)]))
        else:
            conn = stack.enter_context(_mailman_app(args.port, stack).get_connection())

            def send(attachment: bytes) -> int:
                return message(attachment, connection=conn).send()

        send(os.urandom(1024))  # warm-up: every import and connection made before measuring
        attachment = os.urandom(int(args.mb * 1024 * 1024))
        reset_peak()
        before = rss_kib("VmRSS")
        accepted = send(attachment)
        peak = rss_kib("VmHWM")
    json.dump({"accepted": accepted, "before_kib": before, "peak_kib": peak, "growth_kib": peak - before,
               "attachment_kib": len(attachment) // 1024}, sys.stdout)


if __name__ == "__main__":
    main()
