"""What goes after DATA: dot-stuffed, CRLF-terminated, and copied only when it must be rewritten."""

from __future__ import annotations

import pytest

from mail_gateway.backends.smtp.transaction import wire_data


@pytest.mark.parametrize(
    ("data", "wire"),
    [
        (b"Subject: x\r\n\r\nbody\r\n", b"Subject: x\r\n\r\nbody\r\n.\r\n"),
        (b"Subject: x\r\n\r\nbody", b"Subject: x\r\n\r\nbody\r\n.\r\n"),
        (b"Subject: x\r\n\r\n.hidden\r\n..two\r\n", b"Subject: x\r\n\r\n..hidden\r\n...two\r\n.\r\n"),
        (b".first\r\n", b"..first\r\n.\r\n"),
        (b"bare\nlf\rcr\r\n", b"bare\r\nlf\r\ncr\r\n.\r\n"),
        (b"bare\n.dot\n", b"bare\r\n..dot\r\n.\r\n"),
    ],
)
def test_wire_data(data: bytes, wire: bytes) -> None:
    assert b"".join(wire_data(data)) == wire


def test_a_large_message_that_needs_no_rewrite_is_sent_as_is() -> None:
    data = b"Subject: big\r\n\r\n" + b"A" * 76 + b"\r\n" * 1 + (b"B" * 76 + b"\r\n") * 40_000
    chunks = wire_data(data)
    assert chunks[0] is data and chunks[1:] == (b".\r\n",)
