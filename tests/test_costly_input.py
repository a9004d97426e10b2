"""Input small on the wire that cost the gateway far more than its size (``cpu_limited``)."""

from __future__ import annotations

import base64
import os

import pytest
from cpu_limited import run_limited


def test_a_long_send_at_is_refused_in_one_pass() -> None:
    # The check that refuses a bare number tried every way to split a run of digits between the parts before and
    # after a point: 5,000 digits and a letter took 1.2 s of CPU, 50,000 two minutes (a 50 KB request).
    run_limited(
        "for send_at in ('1' * 1_000_000 + 'x', '1.' + '1' * 1_000_000 + 'x', '-' + '1' * 1_000_000 + 'e'):\n"
        "    answer = client.post('/v1/messages', json={**MESSAGE, 'send_at': send_at})\n"
        "    errors = answer.get_json()['errors']\n"
        "    assert answer.status_code == 422 and [e['field'] for e in errors] == ['send_at'], errors\n")


def test_too_many_recipients_are_refused_before_any_address_is_read() -> None:
    # The limit (GATEWAY_MAX_RECIPIENTS, 100 by default) was checked once every address had been read, some
    # 250 us each: 10,000 took 2.6 s of CPU before the 422, and 10,000 invalid ones made a 1.2 MB answer listing
    # each (120 bytes of answer for 6 of request).
    run_limited(
        "many = [f'u{i}@example.com' for i in range(300_000)]\n"
        "raw = base64.b64encode(b'Subject: Hi\\r\\n\\r\\nHello\\r\\n').decode()\n"
        "for path, payload, field in (\n"
        "        ('/v1/messages', {**MESSAGE, 'to': many}, 'to'),\n"
        "        ('/v1/messages', {**MESSAGE, 'to': ['x'] * 1_000_000, 'cc': ['y'] * 1_000_000}, 'to'),\n"
        "        ('/v1/messages', {**MESSAGE, 'to': many[:50], 'cc': many[50:100], 'bcc': 'z'}, 'to'),\n"
        "        ('/v1/messages/batch', {'messages': [{**MESSAGE, 'bcc': many}]}, 'to'),\n"
        "        ('/v1/messages/raw', {'mail_from': 'app@example.com', 'rcpt_to': many, 'data': raw}, 'rcpt_to'),\n"
        "        ('/v1/messages/raw', {'mail_from': 'app@example.com', 'rcpt_to': ['x'] * 2_000_000, 'data': raw},\n"
        "         'rcpt_to')):\n"
        "    answer = client.post(path, json=payload)\n"
        "    body = answer.get_json()\n"
        "    errors = body['results'][0]['error']['errors'] if 'results' in body else body['errors']\n"
        "    assert [e['field'] for e in errors] == [field], errors\n"
        "    assert 'GATEWAY_MAX_RECIPIENTS' in errors[0]['message'], errors\n"
        "    assert len(answer.data) < 2000, len(answer.data)\n")


def test_a_reply_to_of_many_addresses_is_refused_before_they_are_read() -> None:
    # reply_to had no bound: 10,000 addresses were read (2.7 s of CPU) and written into one Reply-To header.
    run_limited(
        "many = [f'u{i}@example.com' for i in range(300_000)]\n"
        "for reply_to in (many, ['x'] * 2_000_000):\n"
        "    answer = client.post('/v1/messages', json={**MESSAGE, 'reply_to': reply_to})\n"
        "    assert answer.status_code == 422 and answer.get_json()['errors'] == [\n"
        "        {'field': 'reply_to', 'message': 'must hold at most 50 items'}], answer.get_json()\n"
        "assert client.post('/v1/messages', json={**MESSAGE, 'reply_to': many[:50]}).status_code == 202\n")


def test_a_header_field_of_many_continuation_lines_is_read_in_one_pass() -> None:
    # Each continuation line was added to the field read so far, copying it again: a raw message with a field of
    # 100,000 short lines (400 KB) took 3 s of CPU, a million (4 MB) more than five minutes.
    run_limited(
        "data = (b'From: app@example.com\\r\\nTo: ann@example.com\\r\\nSubject: Hi\\r\\nX-Long: a\\r\\n'\n"
        "        + b' a\\r\\n' * 1_000_000 + b'\\r\\nHello\\r\\n')\n"
        "answer = client.post('/v1/messages/raw', json=raw(data))\n"
        "assert answer.status_code == 202, answer.get_json()\n")


@pytest.mark.parametrize("data", [
    "b'X-Long: a\\r\\n' + b' a\\r\\n' * 1_000_000 + b'\\r\\nHello\\r\\n'",
    "b'\\r\\n' + (b' ' * 996 + b'x\\r\\n') * 12_000 + b'end \\r\\n'",
], ids=["continuation-lines", "spaces-within-lines"])
def test_a_message_is_dkim_signed_in_one_pass(tmp_path, data) -> None:
    # Signing read a field as the header reader did, copying it again for each continuation line (a million took
    # minutes), and looked for spaces ending a line from each space of a run that does not (a line of 996 spaces
    # and an x): 2.5 s of CPU for each megabyte of such lines.
    key = tmp_path / "ed2026.key"
    key.write_bytes(base64.b64encode(os.urandom(32)) + b"\n")
    run_limited("data = b'From: app@example.com\\r\\nTo: ann@example.com\\r\\nSubject: Hi\\r\\n' + " + data + "\n"
                "answer = client.post('/v1/messages/raw', json=raw(data))\n"
                "assert answer.status_code == 202, answer.get_json()\n"
                "[kept] = client.get('/v1/outbox').get_json()['messages']\n"
                "signed = client.get(f\"/v1/outbox/{kept['id']}/raw\").data\n"
                "assert signed.startswith(b'DKIM-Signature: v=1; a=ed25519-sha256;'), signed[:100]\n",
                GATEWAY_DKIM_KEYS=f"example.com:ed2026:{key}")


def test_a_message_of_many_one_time_codes_is_viewed_in_one_pass() -> None:
    # Each code found was looked for in the list of those found before: a text of 20,000 codes (240 KB) took 20 s
    # of CPU for each view of the message, 100,000 some eight minutes.
    run_limited(
        "text = ' '.join(f'code {100_000 + i}' for i in range(100_000))\n"
        "assert client.post('/v1/messages', json={**MESSAGE, 'text': text}).status_code == 202\n"
        "[kept] = client.get('/v1/outbox').get_json()['messages']\n"
        "shown = client.get(f\"/v1/outbox/{kept['id']}\").get_json()\n"
        "assert shown['codes'][:2] == ['100000', '100001'] and len(shown['codes']) == 100_000\n")


def test_a_link_of_many_pieces_of_text_is_read_in_one_pass() -> None:
    # Each piece of a link's text (between its tags) was added to the text so far, copying it again: 8 MB of them
    # within one <a> took 48 s of CPU at each view of the message (its links are read for the detail).
    run_limited(
        "from mail_gateway.outbox.links import html_links\n"
        "piece = 'forty characters of the text of a link '\n"
        "[link], _ = html_links('<a href=\"https://example.com/x\">' + (piece + '<b>') * 200_000 + '</a>')\n"
        "assert link.url == 'https://example.com/x' and link.text == (piece * 200_000).strip(), link.url\n")
