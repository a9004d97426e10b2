"""Property-based tests: schemathesis drives every route of /openapi.json through the WSGI app, and hypothesis
feeds the message model hostile text. No input may give a 5xx, a traceback, or a message with an injected header.
"""

from __future__ import annotations

import email
import email.policy

import pytest
import schemathesis
from api_helpers import outbox
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from backends.rendering import render_message
from gateway import create_app
from gateway.messages import build_message
from gateway.problems import InvalidRequest
from gateway.schemas import parse_message_request

API_KEY = "fuzz-key"
FUZZ_SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(HealthCheck))


@pytest.fixture
def fuzzed_app(make_settings):
    return create_app(make_settings(mail_backend="memory", gateway_api_keys=API_KEY,
                                    gateway_max_message_bytes=64 * 1024))


POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
# Routes without parameters or a body have no invalid input to generate.
CASES = [(path, "POST", mode) for path in ("/v1/messages", "/v1/messages/batch", "/v1/messages/raw")
         for mode in (POSITIVE, NEGATIVE)] + [("/healthz", "GET", POSITIVE), ("/openapi.json", "GET", POSITIVE)]


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


@pytest.mark.parametrize(("path", "method", "mode"), CASES, ids=[f"{m} {p} {g.value}" for p, m, g in CASES])
def test_every_route_survives_generated_requests(fuzzed_app, path, method, mode) -> None:
    # The schema is loaded by hand rather than with schemathesis's pytest plugin, whose lazy fixtures do not
    # work with the pytest this project uses.
    operation = schemathesis.openapi.from_wsgi("/openapi.json", fuzzed_app)[path][method]

    @FUZZ_SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        before = len(outbox(fuzzed_app))
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
            assert_no_injected_header(outbox(fuzzed_app)[before].rendered.data, case.body)

    statuses: dict[int, int] = {}
    run()
    # Shown with pytest -s: how many requests were made and what they got.
    print(f"\n{method} {path} ({mode.value}): {sum(statuses.values())} requests, statuses {sorted(statuses.items())}")


# Text with every kind of line break and control character a header could be split on.
HOSTILE = "aZ :<>@,;\"'\\é€\r\n\t\x00\x0b\x0c\x1c\x85\u2028"
# Half plain text, so that most messages are valid and reach rendering; half hostile.
hostile_text = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x2ff, exclude_characters='"\\'), max_size=40),
    st.text(alphabet=st.sampled_from(list(HOSTILE)) | st.characters(), max_size=40),
)


@given(
    subject=hostile_text,
    header_name=st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7f), min_size=1, max_size=12),
    header_value=hostile_text,
    tags=st.lists(hostile_text, max_size=3),
    metadata=st.dictionaries(st.from_regex(r"[A-Za-z0-9_-]{1,8}", fullmatch=True), hostile_text, max_size=3),
    filename=hostile_text,
    display_name=hostile_text,
)
@settings(max_examples=300, deadline=None, derandomize=True, database=None)
def test_no_field_of_the_message_model_can_inject_a_header(subject, header_name, header_value, tags, metadata,
                                                           filename, display_name) -> None:
    message = {"from": f'"{display_name}" <app@example.com>' if display_name else "app@example.com",
               "to": ["friend@example.com"], "subject": subject, "text": "body", "tags": tags,
               "metadata": metadata, "headers": {header_name: header_value},
               "attachments": [{"filename": filename or "x", "content": "QUJD"}]}
    try:
        request = parse_message_request(message, default_sender=None)
    except InvalidRequest as problem:
        assert problem.status == 422 and problem.errors
        event("refused with 422")
        return
    event("rendered")
    rendered = render_message(build_message(request, default_sender=None))
    assert rendered.recipients == ("friend@example.com",)
    assert_no_injected_header(rendered.data, message)
    parsed = email.message_from_bytes(rendered.data, policy=email.policy.default)
    assert parsed["Subject"].split() == subject.split()  # folding may change whitespace, never the words
    [attachment] = list(parsed.iter_attachments())
    assert attachment.get_filename() == (filename or "x") and attachment.get_payload(decode=True) == b"ABC"
