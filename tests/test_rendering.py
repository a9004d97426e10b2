from __future__ import annotations

import pytest

from mail_gateway.errors import InvalidMessageError
from mail_gateway.mail.rendering import render_raw

RAW = b"From: a@example.com\r\nSubject: x\r\n\r\nMessage-ID: <not-a-header@example.com>\r\n"


def test_render_raw_adds_only_what_is_missing() -> None:
    rendered = render_raw("a@example.com", ["b@example.com"], RAW)
    assert rendered.data.endswith(RAW)
    assert rendered.message_id.startswith("<") and rendered.message_id != "<not-a-header@example.com>"
    assert rendered.data.count(b"Date: ") == 1


def test_render_raw_keeps_an_existing_message_id_and_date() -> None:
    raw = b"Message-ID: <given@example.com>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nbody\r\n"
    rendered = render_raw("a@example.com", ["b@example.com"], raw)
    assert rendered.data == raw and rendered.message_id == "<given@example.com>"


def test_render_raw_can_leave_the_bytes_untouched() -> None:
    rendered = render_raw("a@example.com", ["b@example.com"], RAW, add_missing=False)
    assert rendered.data == RAW and rendered.message_id == ""


def test_render_raw_needs_recipients() -> None:
    with pytest.raises(InvalidMessageError):
        render_raw("a@example.com", [], RAW)


def test_the_date_header_names_its_zone() -> None:
    # "-0000" would mean "zone unknown" (RFC 5322 3.3); a numeric offset with a sign that is not "-0000" is known.
    rendered = render_raw("a@example.com", ["b@example.com"], b"Subject: x\r\n\r\nbody\r\n")
    date_line = next(line for line in rendered.data.split(b"\r\n") if line.startswith(b"Date: "))
    assert not date_line.endswith(b"-0000") and date_line[-5:-4] in (b"+", b"-")
