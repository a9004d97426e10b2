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
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from mail_gateway import create_app
from mail_gateway.errors import InvalidMessageError
from mail_gateway.http.problems import problem_for
from mail_gateway.mail.compose import compose
from mail_gateway.mail.request import parse_message_request

API_KEY = "fuzz-key"
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
                                                              ("/v1/outbox", "GET", "negative")]


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


def fuzz(app, operation, mode: str) -> dict[int, int]:
    """Send generated requests for one operation; return how many got each status."""
    path = operation.path
    if mode == "sendable":
        strategy = operation.as_strategy(generation_mode=GenerationMode.POSITIVE).map(make_sendable)
    else:
        strategy = operation.as_strategy(generation_mode=GenerationMode(mode))
    statuses: dict[int, int] = {}

    @FUZZ_SETTINGS
    @given(case=strategy)
    def run(case) -> None:
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
    operation = schemathesis.openapi.from_wsgi("/openapi.json", fuzzed_app)[path][method]
    assert sum(fuzz(fuzzed_app, operation, mode).values()) >= 1


def test_routes_added_by_other_blueprints_are_fuzzed_too(fuzzed_app) -> None:
    extra = Blueprint("extra", __name__)

    @extra.get("/v1/items/<int:item_id>")
    def item(item_id: int) -> dict:
        """One item."""
        return {"id": item_id}

    fuzzed_app.register_blueprint(extra)
    known = {(path, method.lower()) for path, method, _ in CASES}
    others = [result.ok() for result in schemathesis.openapi.from_wsgi("/openapi.json", fuzzed_app)
              .get_all_operations() if (result.ok().path, result.ok().method.lower()) not in known]
    paths = [(op.path, op.method.lower()) for op in others]
    assert ("/v1/items/{item_id}", "get") in paths
    assert ("/v1/outbox/{message_id}", "get") in paths and ("/readyz", "get") in paths
    for operation in others:
        assert sum(fuzz(fuzzed_app, operation, "positive").values()) >= 1


# Text with every kind of line break and control character a header could be split on.
HOSTILE = "aZ :<>@,;\"'\\é€\r\n\t\x00\x0b\x0c\x1c\x85\u2028"
hostile_text = st.text(alphabet=st.sampled_from(list(HOSTILE)) | st.characters(), max_size=40)
plain_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x2ff, exclude_characters='"\\/,',
                                           exclude_categories=("Cc", "Cs")), max_size=40)
TEXT_FIELDS = ("subject", "header_value", "tag", "metadata_value", "filename", "display_name")


@given(
    plain=st.fixed_dictionaries({name: plain_text for name in TEXT_FIELDS}),
    target=st.sampled_from(TEXT_FIELDS),
    hostile=hostile_text,
    header_name=st.from_regex(r"X-[A-Za-z0-9-]{1,10}", fullmatch=True)
    | st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7f), min_size=1, max_size=12),
    metadata_key=st.from_regex(r"[A-Za-z0-9_-]{1,8}", fullmatch=True),
)
@settings(max_examples=300, deadline=None, derandomize=True, database=None)
def test_no_field_of_the_message_model_can_inject_a_header(plain, target, hostile, header_name, metadata_key) -> None:
    # One field at a time gets hostile text, the rest plain, so that most examples are valid and get rendered.
    text = {**plain, target: hostile}
    display_name, filename = text["display_name"], text["filename"].strip() or "x"
    message = {"from": f'"{display_name}" <app@example.com>' if display_name else "app@example.com",
               "to": ["friend@example.com"], "subject": text["subject"], "text": "body",
               "tags": [text["tag"]] if text["tag"] else [], "metadata": {metadata_key: text["metadata_value"]},
               "headers": {header_name: text["header_value"]},
               "attachments": [{"filename": filename, "content": "QUJD"}]}
    try:
        request = parse_message_request(message, default_sender=None)
    except InvalidMessageError as problem:
        assert problem_for(problem).status == 422 and problem.errors
        event("refused with 422")
        return
    try:
        rendered = compose(request)
    except InvalidMessageError as exc:  # the HTTP routes answer it with 422 naming the field
        assert problem_for(exc).status == 422
        event("refused with 422 when rendered")
        return
    event("rendered")
    assert rendered.recipients == ("friend@example.com",)
    assert_no_injected_header(rendered.data, message)
    parsed = email.message_from_bytes(rendered.data, policy=email.policy.default)
    assert parsed["Subject"].split() == text["subject"].split()  # folding may change whitespace, never words
    [attachment] = list(parsed.iter_attachments())
    assert attachment.get_filename() == filename and attachment.get_payload(decode=True) == b"ABC"
