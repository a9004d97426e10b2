"""Property-based tests: schemathesis drives every route of /openapi.json through the WSGI app, and hypothesis
feeds the message model hostile text. No input may give a 5xx, a traceback, or a message with an injected header.
"""

from __future__ import annotations

import base64
import email
import email.policy

import pytest
import schemathesis
from api_helpers import outbox
from flask import Blueprint
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from mail_gateway import create_app
from mail_gateway.errors import InvalidMessageError
from mail_gateway.http.problems import problem_for
from mail_gateway.mail.compose import compose
from mail_gateway.mail.request import parse_message_request

API_KEY = "fuzz-key"
# Schemathesis's statuses that reject invalid data, and 413: a generated body larger than the app's
# GATEWAY_MAX_MESSAGE_BYTES is refused for its size before anything else in it is read.
REJECTING = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
FUZZ_CONFIG = schemathesis.Config.from_dict({"checks": {"negative_data_rejection": {"expected-statuses": REJECTING}}})
FUZZ_SETTINGS = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(HealthCheck))


@pytest.fixture
def fuzzed_app(make_settings):
    return create_app(make_settings(mail_backend="memory", gateway_api_keys=API_KEY,
                                    gateway_max_message_bytes=64 * 1024))


# Routes without parameters or a body have no invalid input to generate.
# "sendable" is positive data with what a schema cannot express fixed up (real addresses, decodable base64), so
# that the generated subjects, headers, tags, metadata and attachments reach the backend.
CASES = [(path, "POST", mode) for path in ("/v1/messages", "/v1/messages/batch", "/v1/messages/raw")
         for mode in ("positive", "negative", "sendable")] + [("/healthz", "GET", "positive"),
                                                              ("/openapi.json", "GET", "positive"),
                                                              ("/v1/outbox", "GET", "positive"),
                                                              ("/v1/outbox", "GET", "negative")] + [
    (path, "POST", mode) for path in ("/v1/templates", "/v1/templates/{name}/render")
    for mode in ("positive", "negative")]


def _sendable_message(message: dict) -> dict:
    message = {**message, "from": "app@example.com", "to": ["friend@example.com"], "cc": [], "bcc": [],
               "reply_to": []}
    if message.get("text") is None and message.get("html") is None:
        message["text"] = "body"
    message["attachments"] = [
        {**a, "content": base64.b64encode(str(a.get("content", "")).encode()).decode()}
        for a in message.get("attachments") or [] if isinstance(a, dict)
    ]
    return message


def make_sendable(case):
    body = case.body
    if isinstance(body, dict):
        if case.path == "/v1/messages":
            case.body = _sendable_message(body)
        elif case.path == "/v1/messages/batch":
            case.body = {**body, "messages": [_sendable_message(m) for m in body.get("messages", [])]}
        elif case.path == "/v1/messages/raw":
            case.body = {**body, "mail_from": "app@example.com", "rcpt_to": ["friend@example.com"],
                         "data": base64.b64encode(str(body.get("data", "")).encode()).decode()}
    return case


def expected_header_names(message: dict) -> set[str]:
    names = {"from", "to", "cc", "reply-to", "subject", "date", "message-id", "mime-version", "content-type",
             "content-transfer-encoding", "x-tags"}
    names |= {name.lower() for name in message.get("headers", {})}
    names |= {f"x-metadata-{key}".lower() for key in message.get("metadata", {})}
    return names


def assert_no_injected_header(rendered: bytes, message: dict) -> None:
    parsed = email.message_from_bytes(rendered, policy=email.policy.default)
    names = [name.lower() for name in parsed.keys()]
    assert set(names) <= expected_header_names(message), names
    assert names.count("from") == names.count("subject") == names.count("to") == 1
    assert "bcc" not in names
    assert not parsed.defects, parsed.defects


def without_waiting(case):
    """The outbox's wait route holds a request until its timeout (30 s unless given) when nothing matches; the
    fuzzer checks its answers, not its waiting (test_outbox_live does), so a valid or absent timeout becomes 0.
    An invalid one is left for the route to refuse."""
    if case.path.endswith("/wait"):
        query = case.query if isinstance(case.query, dict) else {}
        timeout = query.get("timeout")
        if timeout is None or (isinstance(timeout, int) and not isinstance(timeout, bool) and 0 <= timeout <= 60):
            case.query = {**query, "timeout": 0}
    return case


def fuzz(app, operation, mode: str) -> dict[int, int]:
    """Send generated requests for one operation; return how many got each status."""
    path = operation.path
    if mode == "sendable":
        strategy = operation.as_strategy(generation_mode=GenerationMode.POSITIVE).map(make_sendable)
    else:
        strategy = operation.as_strategy(generation_mode=GenerationMode(mode)).map(without_waiting)
    statuses: dict[int, int] = {}

    @FUZZ_SETTINGS
    @given(case=strategy)
    def run(case) -> None:
        # A query parameter named "" is dropped by the test client before it is sent, so the request that arrives
        # is not the schema-violating one schemathesis expects to be refused (the server refuses it: test_outbox_api).
        assume(not (isinstance(case.query, dict) and "" in case.query))
        before = len(outbox(app))
        # Schemathesis's own checks: no 5xx, documented status codes, content types and bodies that match the
        # document. "Positive data acceptance" is left out: a schema cannot say that an address needs a real
        # domain or that base64 must decode, so a schema-valid body may rightly be 422.
        excluded = [positive_data_acceptance]
        if path == "/v1/messages/batch":
            # By design an invalid message inside a batch fails alone, in its result, not the whole request.
            excluded.append(negative_data_rejection)
        response = case.call_and_validate(headers={"Authorization": f"Bearer {API_KEY}"}, excluded_checks=excluded)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500
        assert "Traceback" not in response.text
        replayed = "idempotent-replayed" in {k.lower() for k in response.headers}
        if path == "/v1/messages" and response.status_code == 202 and not replayed:
            assert_no_injected_header(outbox(app)[before].data, case.body)

    run()
    # Shown with pytest -s: how many requests were made and what they got.
    print(f"\n{operation.method.upper()} {path} ({mode}): {sum(statuses.values())} requests, "
          f"statuses {sorted(statuses.items())}")
    return statuses


@pytest.mark.parametrize(("path", "method", "mode"), CASES, ids=[f"{m} {p} {g}" for p, m, g in CASES])
def test_every_route_survives_generated_requests(fuzzed_app, path, method, mode) -> None:
    # The schema is loaded by hand rather than with schemathesis's pytest plugin, whose lazy fixtures do not
    # work with the pytest this project uses.
    operation = schemathesis.openapi.from_wsgi("/openapi.json", fuzzed_app, config=FUZZ_CONFIG)[path][method]
    assert sum(fuzz(fuzzed_app, operation, mode).values()) >= 1


def test_routes_added_by_other_blueprints_are_fuzzed_too(fuzzed_app) -> None:
    extra = Blueprint("extra", __name__)

    @extra.get("/v1/items/<int:item_id>")
    def item(item_id: int) -> dict:
        """One item."""
        return {"id": item_id}

    fuzzed_app.register_blueprint(extra)
    known = {(path, method.lower()) for path, method, _ in CASES}
    others = [result.ok() for result in schemathesis.openapi.from_wsgi("/openapi.json", fuzzed_app, config=FUZZ_CONFIG)
              .get_all_operations() if (result.ok().path, result.ok().method.lower()) not in known]
    paths = [(op.path, op.method.lower()) for op in others]
    assert ("/v1/items/{item_id}", "get") in paths
    assert ("/v1/outbox/{message_id}", "get") in paths and ("/readyz", "get") in paths
    for operation in others:
        assert sum(fuzz(fuzzed_app, operation, "positive").values()) >= 1


def test_routes_with_input_refuse_generated_invalid_requests(fuzzed_app) -> None:
    # Negative data for every operation with a body or parameters, beyond the send and template routes above: a
    # value of another type, out of bounds or unknown is refused, never taken (the chaos switch read
    # "percent": false as 0).
    known = {(path, method.lower()) for path, method, mode in CASES if mode == "negative"}
    operations = [result.ok() for result in schemathesis.openapi.from_wsgi("/openapi.json", fuzzed_app,
                                                                           config=FUZZ_CONFIG).get_all_operations()]
    with_input = [op for op in operations if (op.path, op.method.lower()) not in known and (
        op.body or op.path.endswith("{index}") or any(p.location == "query" for p in op.iter_parameters()))]
    assert {"/v1/outbox/chaos", "/v1/suppressions", "/v1/outbox/{message_id}/release"} <= {op.path for op in with_input}
    for operation in with_input:
        assert sum(fuzz(fuzzed_app, operation, "negative").values()) >= 1


# Every character a header may not hold (C0 but TAB, DEL, C1, U+2028/U+2029), and other text a header could be
# split or confused on.
FORBIDDEN = [chr(c) for c in (*range(0x00, 0x09), *range(0x0A, 0x20), *range(0x7F, 0xA0), 0x2028, 0x2029)]
HOSTILE = [*FORBIDDEN, *"aZ :<>@,;\"'\\é€\t=?"]
hostile_text = st.text(alphabet=st.sampled_from(HOSTILE) | st.characters(), max_size=40)
plain_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x2ff, exclude_characters='"\\/,',
                                           exclude_categories=("Cc", "Cs")), max_size=40)
# Each field that becomes (part of) a header. Names are display names of the address fields.
TEXT_FIELDS = ("subject", "header_value", "tag", "metadata_value", "filename", "content_id", "from_name",
               "to_name", "cc_name", "bcc_name", "reply_to_name")
ADDRESS_FIELDS = ("from", "to", "cc", "bcc", "reply_to")


def _address(name: str, spec: str) -> str:
    return f'"{name}" <{spec}>' if name else spec


def generated_message(text: dict[str, str], header_name: str, metadata_key: str) -> dict:
    filename = text["filename"] or "x"
    message = {field: [_address(text[f"{field}_name"], f"{field}@example.com")] for field in ADDRESS_FIELDS}
    return {**message, "from": message["from"][0], "subject": text["subject"], "text": "body",
            "tags": [text["tag"]] if text["tag"] else [], "metadata": {metadata_key: text["metadata_value"]},
            "headers": {header_name: text["header_value"]},
            "attachments": [{"filename": filename, "content": "QUJD", "content_id": text["content_id"] or None}]}


def check_generated(message: dict, text: dict[str, str], injected: str | None) -> str:
    """Refused with 422 naming the field, or rendered without an injected header; returns which."""
    try:
        request = parse_message_request(message, default_sender=None)
    except InvalidMessageError as problem:
        assert problem_for(problem).status == 422 and problem.errors
        return "refused with 422"
    assert injected is None, f"a control character was accepted: {message!r}"
    rendered = compose(request)
    assert rendered.recipients == tuple(f"{f}@example.com" for f in ("to", "cc", "bcc"))
    assert_no_injected_header(rendered.data, message)
    parsed = email.message_from_bytes(rendered.data, policy=email.policy.default)
    assert parsed["Subject"].split() == text["subject"].split()  # folding may change whitespace, never words
    [attachment] = list(parsed.iter_attachments())
    assert attachment.get_filename() == message["attachments"][0]["filename"].strip()
    assert attachment.get_payload(decode=True) == b"ABC"
    return "rendered"


def with_every_control_character(test):
    """Explicit examples first: each forbidden character once, in each field in turn (66 characters over 11
    fields: every character, every field, several characters per field), whatever hypothesis then draws."""
    plain = dict.fromkeys(TEXT_FIELDS, "plain")
    for index, character in enumerate(FORBIDDEN):
        test = example(plain=plain, target=TEXT_FIELDS[index % len(TEXT_FIELDS)], hostile="",
                       injection=("Ann", character, "Lee"), header_name="X-Custom", metadata_key="key")(test)
    return test


def test_no_field_of_the_message_model_can_inject_a_header() -> None:
    # One field at a time gets hostile text — often plain text with one forbidden character put in — and the
    # rest plain, so that most clean examples are valid and get rendered.
    hit_characters: set[str] = set()
    hit_fields: set[str] = set()

    @settings(max_examples=400, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @with_every_control_character
    @given(plain=st.fixed_dictionaries({name: plain_text for name in TEXT_FIELDS}),
           target=st.sampled_from(TEXT_FIELDS), hostile=hostile_text,
           injection=st.none() | st.tuples(plain_text, st.sampled_from(FORBIDDEN), plain_text),
           header_name=st.from_regex(r"X-[A-Za-z0-9-]{1,10}", fullmatch=True)
           | st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7f), min_size=1, max_size=12),
           metadata_key=st.from_regex(r"[A-Za-z0-9_-]{1,8}", fullmatch=True))
    def run(plain, target, hostile, injection, header_name, metadata_key) -> None:
        injected = None if injection is None else injection[1]
        value = hostile if injection is None else "".join(injection)
        if injected is not None:
            hit_characters.add(injected)
            hit_fields.add(target)
        text = {**plain, target: value}
        event(check_generated(generated_message(text, header_name, metadata_key), text, injected))

    run()
    assert hit_fields == set(TEXT_FIELDS)
    assert hit_characters == set(FORBIDDEN), sorted(hex(ord(c)) for c in set(FORBIDDEN) - hit_characters)
