"""A message's tags and metadata read back from its X-Tags and X-Metadata-* headers, whichever way it was sent, for
its status and the webhooks of its events (the webhooks themselves: tests/test_queue_webhooks.py)."""

from __future__ import annotations

import base64

from queue_support import MESSAGE, queued_app

from mail_gateway.mail.tags import tags_and_metadata


def test_a_message_without_those_headers_has_none_even_if_its_body_names_them() -> None:
    assert tags_and_metadata(b"Subject: Hi\r\nX-Other: 1\r\n\r\nX-Tags: body, text\r\nX-Metadata-a: b\r\n") == ((),
                                                                                                              {})


def test_folded_encoded_and_8bit_fields_are_read_as_their_text() -> None:
    data = ("Subject: Hi\r\nx-tags: one,\r\n two , one,, three\r\nX-Metadata-order_id: 1234\r\n"
            "X-Metadata-name: =?utf-8?q?J=C3=BCrgen?=\r\nX-Metadata-city: Köln\r\n\r\nbody\r\n").encode()
    assert tags_and_metadata(data) == (("one", "two", "three"),
                                       {"order_id": "1234", "name": "Jürgen", "city": "Köln"})


def test_an_encoded_word_that_does_not_decode_is_kept_as_sent(make_settings) -> None:
    # decode_header raises HeaderParseError for bad base64, and make_header CharsetError for an unknown charset:
    # neither is a ValueError, and either took the enqueue of a raw message with such a field down.
    data = b"X-Metadata-a: =?utf-8?b?x?=\r\nX-Metadata-b: =?no-such-charset?q?x?=\r\nX-Tags: =?utf-8?b?x?=\r\n\r\n"
    assert tags_and_metadata(data) == (("=?utf-8?b?x?=",), {"a": "=?utf-8?b?x?=", "b": "=?no-such-charset?q?x?="})
    queued = queued_app(make_settings, workers=False, mail_backend="memory")
    raw = b"From: app@example.com\r\nTo: a@example.com\r\n" + data + b"Hi\r\n"
    answer = queued.client.post("/v1/messages/raw", json={"mail_from": "app@example.com", "rcpt_to": ["a@example.com"],
                                                          "data": base64.b64encode(raw).decode()})
    assert answer.status_code == 202, answer.get_json()


def test_what_the_json_api_would_refuse_is_left_out() -> None:
    many = "".join(f"X-Metadata-k{i}: {i}\r\n" for i in range(60))
    data = ("X-Tags: " + ", ".join(f"t{i}" for i in range(60)) + ", " + "x" * 129 + "\r\n"
            "X-Metadata-: empty key\r\nX-Metadata-a.b: dotted key\r\n" + many + "\r\n").encode()
    tags, metadata = tags_and_metadata(data)
    assert tags == tuple(f"t{i}" for i in range(50))
    assert list(metadata) == [f"k{i}" for i in range(50)]


def test_a_raw_message_with_those_headers_shows_them_in_its_status(make_settings) -> None:
    queued = queued_app(make_settings, workers=False, mail_backend="memory")
    data = b"From: app@example.com\r\nTo: a@example.com\r\nSubject: Hi\r\nX-Tags: raw\r\nX-Metadata-id: 7\r\n\r\nHi\r\n"
    answer = queued.client.post("/v1/messages/raw", json={"mail_from": "app@example.com", "rcpt_to": ["a@example.com"],
                                                          "data": base64.b64encode(data).decode()})
    assert answer.status_code == 202, answer.get_json()
    shown = queued.status(answer.get_json()["id"])
    assert (shown["tags"], shown["metadata"]) == (["raw"], {"id": "7"})
    sent = queued.send({**MESSAGE, "tags": ["a", "b"], "metadata": {"user_id": "42"}})
    assert (queued.status(sent["id"])["tags"], queued.status(sent["id"])["metadata"]) == (["a", "b"], {"user_id": "42"})
    plain = queued.status(queued.send()["id"])
    assert (plain["tags"], plain["metadata"]) == ([], {})


def test_the_list_finds_messages_by_tag_and_by_recipient(make_settings) -> None:
    queued = queued_app(make_settings, workers=False, mail_backend="memory")
    receipt = queued.send({**MESSAGE, "to": ["Bob@example.com"], "tags": ["receipt"]})["id"]
    queued.send({**MESSAGE, "to": ["ann@example.com"], "tags": ["welcome"]})

    def listed(query: str) -> list[str]:
        response = queued.client.get(f"/v1/messages?{query}")
        assert response.status_code == 200, response.get_json()
        return [m["id"] for m in response.get_json()["messages"]]

    assert listed("tag=receipt") == [receipt] == listed("recipient=bob%40example.com")
    assert listed("tag=receipt&recipient=ann%40example.com") == []
    for query, field in (("tag=", "tag"), ("tag=a&tag=b", "tag"), ("recipient=" + "a" * 999, "recipient"),
                         ("recipient=a%00b", "recipient"), ("tag=%00", "tag")):
        refused = queued.client.get(f"/v1/messages?{query}")
        assert refused.status_code == 400 and refused.get_json()["errors"][0]["field"] == field, refused.get_json()
