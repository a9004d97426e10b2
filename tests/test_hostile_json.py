"""Finding 10 of the hostile-client review: JSON that makes the parser give up is a 400 problem, never a 500; and
numbers JSON has no place for (NaN, Infinity, one beyond a float's range) are refused rather than sent as "nan"."""

from __future__ import annotations

import pytest
from api_helpers import assert_problem

from mail_gateway import create_app


@pytest.fixture
def client(make_settings):
    return create_app(make_settings(mail_backend="memory")).test_client()


@pytest.mark.parametrize("body", [
    b"[" * 100_000 + b"]" * 100_000,  # nesting far deeper than the interpreter's recursion limit
    b'{"to": [' * 5_000 + b"]}" * 5_000,
    b'{"from": "app@example.com", "to": ' + b"9" * 5_000 + b"}",  # beyond int()'s digit limit
], ids=["deep-array", "deep-object", "huge-integer"])
@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/batch", "/v1/messages/raw"])
def test_json_the_parser_gives_up_on_is_400(client, caplog, body: bytes, path: str) -> None:
    response = client.post(path, data=body, content_type="application/json")
    problem = assert_problem(response, 400, "malformed-json")
    assert "body" in problem["detail"].lower()
    assert not [r for r in caplog.records if r.exc_info], "no traceback may reach the log"


def test_the_same_request_with_a_key_is_400_too(client) -> None:
    response = client.post("/v1/messages", data=b"[" * 100_000, content_type="application/json",
                           headers={"Idempotency-Key": "deep-1"})
    assert_problem(response, 400, "malformed-json")


SEND = b'{"from": "app@example.com", "to": "ann@example.com", "template": "t", "variables": {"n": %s}}'


@pytest.mark.parametrize(("number", "said"), [
    (b"NaN", "NaN is not a JSON number"), (b"-Infinity", "-Infinity is not a JSON number"),
    (b"1e400", "1e400 is beyond a 64-bit float's range"),
    (b"9" * 5_000, "5000 digits, more than the 4300 one may have here; send it as a string")])
def test_a_number_json_has_no_place_for_is_400_saying_what_to_send(make_settings, number: bytes, said: str) -> None:
    # Python's parser took NaN and Infinity, and 1e400 as inf: a template rendered them as "nan" and "inf".
    client = create_app(make_settings(mail_backend="memory")).test_client()
    assert client.post("/v1/templates", json={"name": "t", "subject": "{{ n }}", "text": "{{ n }}"}).status_code == 201
    problem = assert_problem(client.post("/v1/messages", data=SEND % number, content_type="application/json"), 400,
                             "malformed-json")
    assert said in problem["detail"] and "sys.set_int_max_str_digits" not in problem["detail"]
    sent = client.post("/v1/messages", data=SEND % b"-1.5e300", content_type="application/json")
    assert sent.status_code == 202, sent.get_data(as_text=True)
