"""The one message every scenario sends: about 1 KB of text from one sender to one recipient."""

from __future__ import annotations

import json
import textwrap
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

SENDER = "bench@example.com"
RECIPIENT = "sink@example.org"
SUBJECT = "Benchmark message"
# ~1 KB of plain text, the size the reference figures use.
# Wrapped so it travels as 7bit text, as most real mail does.
TEXT = "\n".join(textwrap.wrap("The quick brown fox jumps over the lazy dog. " * 23, 72)) + "\n"


def prebuilt_bytes() -> bytes:
    """The message serialised once, for the smtplib floor (which sends bytes, building nothing per message)."""
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = RECIPIENT
    message["Subject"] = SUBJECT
    message["Date"] = formatdate()
    message["Message-ID"] = make_msgid(domain="example.com")
    message.set_content(TEXT)
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def request_body() -> dict[str, object]:
    """The JSON body of ``POST /v1/messages`` for this message."""
    return {"from": SENDER, "to": [RECIPIENT], "subject": SUBJECT, "text": TEXT}


def single_json() -> bytes:
    return json.dumps(request_body()).encode()


def batch_json(size: int) -> bytes:
    return json.dumps({"messages": [request_body()] * size}).encode()
