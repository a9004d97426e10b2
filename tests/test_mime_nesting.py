"""How deeply a message's MIME parts nest, read without parsing it: the same depth as the standard library's parser
finds, over generated messages that stress what it does (any line ending, a missing empty line after the fields,
boundaries reused within each other, a multipart/digest's parts, messages within messages), and thousands of
levels measured without recursion. The ways in that refuse a message past the limit are tested in
test_raw_messages and test_inbound."""

from __future__ import annotations

import email
import email.policy
import random
from email.message import Message

import pytest
from api_helpers import deeply_nested

from mail_gateway.mail.nesting import MAX_MIME_DEPTH, mime_depth, too_deep


def parsed_depth(message: Message) -> int:
    """The depth of the standard library's reading: each multipart with a boundary and each message is a level."""
    deepest, stack = 0, [(message, 0)]
    while stack:
        part, depth = stack.pop()
        kind = part.get_content_maintype()
        if kind == "message" or (kind == "multipart" and part.get_boundary() is not None):
            depth += 1
            payload = part.get_payload()
            stack += [(sub, depth) for sub in payload] if isinstance(payload, list) else []
        deepest = max(deepest, depth)
    return deepest


def generated(chance: random.Random, eol: bytes, levels: int) -> bytes:
    """A part of random shape, at most ``levels`` deep."""
    kind = chance.choice(["text", "fields", "mixed", "mixed", "digest", "message", "no boundary"]) if levels else "text"
    boundary = chance.choice([b"same", b"a:b", b"==x==", f"b{chance.randrange(10**6)}".encode()])
    field = chance.choice([b"Content-Type: ", b"content-type:", b"CONTENT-TYPE:\t", b"Content-Type:" + eol + b" "])
    extra = chance.choice([b"", b"X-A: 1" + eol, b"Subject: s" + eol])
    after_fields = chance.choice([eol, eol, b""])  # now and then the body starts without an empty line
    if kind == "text":
        return extra + field + b"text/plain" + eol + after_fields + b"x" + eol + b"--not a boundary" + eol
    if kind == "fields":  # no body, so a boundary line right after them ("--a:b" looks like a field)
        return extra + field + b"multipart/mixed; boundary=q"
    if kind == "no boundary":
        return field + b"multipart/mixed" + eol + eol + b"--x" + eol
    if kind == "message":
        return extra + field + b"message/rfc822" + eol + after_fields + generated(chance, eol, levels - 1)
    parameter = chance.choice([b'boundary="%s"', b'charset=utf-8; boundary="%s"', b'Boundary = "%s" '])
    body = extra + field + b"multipart/" + kind.encode() + b";" + eol + b"\t" + parameter % boundary + eol
    body += after_fields + chance.choice([b"", b"preamble" + eol])
    for _ in range(chance.randrange(4)):
        digest_part = kind == "digest" and chance.random() < 0.5  # a message without a Content-Type of its own
        part = b"Subject: in a digest" + eol + eol + b"x" + eol if digest_part else generated(chance, eol, levels - 1)
        body += b"--" + boundary + chance.choice([b"", b"  ", b"\t"]) + eol + part + eol
    if chance.random() < 0.8:  # or the closing boundary is missing
        body += b"--" + boundary + b"--" + eol + b"epilogue" + eol
    return body


@pytest.mark.parametrize("seed", range(8))
def test_the_depth_is_the_standard_librarys(seed: int) -> None:
    chance = random.Random(seed)
    for _ in range(150):
        eol = chance.choice([b"\r\n", b"\n", b"\r"])
        data = b"From: a@example.com" + eol + generated(chance, eol, chance.randrange(1, 6))
        for policy in (email.policy.compat32, email.policy.default):
            assert mime_depth(data, limit=1000) == parsed_depth(email.message_from_bytes(data, policy=policy)), data


@pytest.mark.parametrize("within", ["multipart", "message"])
def test_thousands_of_levels_are_measured_without_recursion(within: str) -> None:
    # The standard library's parser gives up at a few hundred levels; the count keeps a list, not a stack.
    data = deeply_nested(5000, within)
    assert mime_depth(data, limit=10_000) == 5000
    assert mime_depth(data) == MAX_MIME_DEPTH + 1 and too_deep(data)  # read no further than the limit
    assert not too_deep(deeply_nested(MAX_MIME_DEPTH, within))


def test_a_boundary_line_of_an_outer_part_ends_the_inner_ones() -> None:
    # Each inner multipart is left unclosed: the outer boundary after it closes them all, as the parser reads it.
    inner = b"".join(b'Content-Type: multipart/mixed; boundary="i%d"\r\n\r\n--i%d\r\n' % (n, n) for n in range(3))
    part = b'Content-Type: multipart/mixed; boundary="o"\r\n\r\n--o\r\n' + inner + b"\r\nx\r\n"
    data = b"From: a@example.com\r\n" + part + b"--o\r\nContent-Type: text/plain\r\n\r\ny\r\n--o--\r\n"
    assert mime_depth(data) == 4 == parsed_depth(email.message_from_bytes(data))


def test_a_delivery_status_counts_two_levels_as_its_blocks_may_say_they_are_messages() -> None:
    report = (b"From: a@example.com\r\nContent-Type: multipart/report; boundary=r\r\n\r\n--r\r\n"
              b"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\n"
              b"Content-Type: message/rfc822\r\n\r\n--r--\r\n")
    assert mime_depth(report) == 3 == parsed_depth(email.message_from_bytes(report))


@pytest.mark.parametrize("fields", [MAX_MIME_DEPTH // 2, MAX_MIME_DEPTH // 2 + 1])
def test_each_content_type_field_makes_at_most_two_levels_as_the_quick_count_assumes(fields: int) -> None:
    # A digest's part is a message without a field of its own, so one field makes two levels: the most there is.
    # too_deep skips the walk for a message with at most MAX_MIME_DEPTH / 2 fields; at the bound it must agree.
    data = b"From: a@example.com\r\n"
    for n in range(fields):
        data += b'Content-Type: multipart/digest; boundary="d%d"\r\n\r\n--d%d\r\nX-Part: %d\r\n\r\n' % (n, n, n)
    assert data.lower().count(b"content-type:") == fields
    assert mime_depth(data, limit=1000) == 2 * fields
    assert too_deep(data) == (2 * fields > MAX_MIME_DEPTH)
