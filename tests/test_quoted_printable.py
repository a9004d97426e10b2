"""The quoted-printable encoder of text parts writes what binascii's writes, byte for byte, and a text part so
encoded reads back as it was written."""

from __future__ import annotations

import binascii
import random
from email import message_from_bytes, policy

import pytest

from mail_gateway.mail.parts import text_part
from mail_gateway.mail.quoted_printable import encode


def binascii_encoded(data: bytes) -> bytes:
    return binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)


@pytest.mark.parametrize("data", [
    b"", b".", b"a\n.\nb", b".\n", b"a.", b"x =y", b"ends with a space ", b"ends with a tab\t", b"a space \nand on",
    b"=" * 40, b"a" * 75, b"a" * 76, b"a" * 77, b"a" * 74 + b" ", b"a" * 75 + b" ", b"a" * 75 + b" \n",
    b"a" * 73 + b"=", b"a" * 72 + b"=", b"a" * 74 + b"=b", b"a" * 150 + b"\n" + b"b=" * 80,
    b'<p class="a" style="color: red;">' * 200, "caf\u00e9 = \u20ac".encode() * 30, b"cr\r\nlf\n", b"del\x7f" * 30,
    b"nul\x00", b"tab\tin\tline" * 20,
])
def test_it_writes_what_binascii_writes(data) -> None:
    assert encode(data) == binascii_encoded(data)


def test_random_text_is_written_as_binascii_writes_it() -> None:
    rng = random.Random(20261207)
    pieces = [b"a", b"=", b" ", b"\t", b"\n", b".", b"<p>", b'"', b"==", b"x" * 70, b"\xc3\xa9", b"\x7f", b"\r\n"]
    for number in range(20_000):
        printable_only = number % 4 != 0
        data = b"".join(rng.choice(pieces[:10] if printable_only else pieces)
                        for _ in range(rng.randint(0, rng.choice([5, 40, 200]))))
        assert encode(data) == binascii_encoded(data), data


def test_a_long_html_line_reads_back_as_written() -> None:
    html = '<html><body><p class="a" style="margin: 0;">Hello = you</p>' * 100 + " \n.\nend "
    head, encoding, body = text_part(html, "text/html")
    assert encoding == b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    message = message_from_bytes(head + encoding + body, policy=policy.default)
    assert message.get_content().replace("\r\n", "\n") == html
