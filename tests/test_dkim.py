"""DKIM signing: the ``dkim`` pipeline step, its settings and start-up checks, the ``dkim=`` log field, and the
``dkim keygen`` and ``check`` commands.

Every signature is checked as a receiver would: by dkimpy's verifier on the bytes a real aiosmtpd upstream
received, given the public keys directly (its ``dnsfunc``), never by the network.
"""

from __future__ import annotations

import base64
import logging
import os
import random
import re
import smtplib
import tracemalloc
from dataclasses import dataclass, field
from math import gcd
from pathlib import Path
from unittest import mock

import dkim
import dns.rcode
import pytest
from api_helpers import HELLO
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from dns_server import DnsServer, txt_strings
from flask import Flask
from flask_mailman import EmailMessage
from ingress_support import DEADLINE_SECONDS
from queue_support import queued_app
from smtp_server import HOST

from mail_gateway import MailGateway, create_app
from mail_gateway.assembly import build_sender
from mail_gateway.cli import main
from mail_gateway.errors import ConfigurationError
from mail_gateway.mail.rendering import RenderedMessage
from mail_gateway.sending import dkim_signature
from mail_gateway.sending.dkim import DkimSigning
from mail_gateway.sending.pipeline import StepContext
from mail_gateway.settings import load_settings

TEXT = "Grüße aus Köln — 東京"
RAW = (b"From: App <app@example.com>\r\nTo: friend@example.com\r\nSubject: Raw\r\n"
       b"Message-ID: <raw-1@example.com>\r\nDate: Mon, 02 Feb 2026 10:00:00 +0000\r\n\r\nRaw body.\r\n")


@dataclass
class Upstream:
    """Records each transaction's MAIL FROM parameters and the message's bytes exactly as they arrived."""

    received: list[tuple[list[str], bytes]] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):
        self.received.append((list(envelope.mail_options), envelope.original_content))
        return "250 2.0.0 OK"


@dataclass(frozen=True)
class Keys:
    rsa_path: Path
    ed_path: Path
    records: dict[bytes, bytes]  # the DNS name of each selector -> its TXT record

    @property
    def settings(self) -> dict[str, str]:
        return {"gateway_dkim_keys": f"example.com:s2026:{self.rsa_path},example.com:ed2026:{self.ed_path}"}

    def dnsfunc(self, name: bytes, timeout: int = 5) -> bytes | None:
        return self.records.get(name)


def rsa_record(key: rsa.RSAPrivateKey) -> bytes:
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def ed25519_record(key: ed25519.Ed25519PrivateKey) -> bytes:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return b"v=DKIM1; k=ed25519; p=" + base64.b64encode(raw)


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> Keys:
    """A 2048-bit RSA key as OpenDKIM's tools write it (PKCS#1 PEM) and an Ed25519 key as dkimpy's do (the
    base64 of its 32-byte seed)."""
    folder = tmp_path_factory.mktemp("dkim")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    rsa_path, ed_path = folder / "s2026.key", folder / "ed2026.key"
    pkcs1 = serialization.PrivateFormat.TraditionalOpenSSL
    rsa_path.write_bytes(rsa_key.private_bytes(serialization.Encoding.PEM, pkcs1, serialization.NoEncryption()))
    seed = ed_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
    ed_path.write_bytes(base64.b64encode(seed) + b"\n")
    return Keys(rsa_path, ed_path, {b"s2026._domainkey.example.com.": rsa_record(rsa_key),
                                    b"ed2026._domainkey.example.com.": ed25519_record(ed_key)})


def signatures(data: bytes) -> list[dict[bytes, bytes]]:
    """Each DKIM-Signature field's tags, top to bottom."""
    headers = dkim.DKIM(data).headers
    return [dkim.util.parse_tag_value(value) for name, value in headers if name.lower() == b"dkim-signature"]


def verified(data: bytes, dnsfunc) -> list[str]:
    """The selectors of the signatures on ``data`` that dkimpy's verifier accepts, top to bottom."""
    found = []
    for index, tags in enumerate(signatures(data)):
        try:
            if dkim.DKIM(data).verify(idx=index, dnsfunc=dnsfunc):
                found.append(tags[b"s"].decode())
        except dkim.ValidationError:  # what dkimpy raises, rather than answer False, for a body that changed
            continue
    return found


def raw_request(data: bytes, mail_from: str = "app@example.com") -> dict:
    return {"mail_from": mail_from, "rcpt_to": ["friend@example.com"], "data": base64.b64encode(data).decode()}


# -- every way in ------------------------------------------------------------------------------------------------

def send_by(way: str, settings: dict, make_settings, ingress_factory, queued_apps) -> None:
    """One message (two for the batch) from app@example.com, sent the way ``way`` names."""
    if way in ("http", "batch", "raw"):
        client = create_app(make_settings(**settings)).test_client()
        path, body = {"http": ("/v1/messages", HELLO), "batch": ("/v1/messages/batch", {"messages": [HELLO, HELLO]}),
                      "raw": ("/v1/messages/raw", raw_request(RAW))}[way]
        response = client.post(path, json=body)
        assert response.status_code in (200, 202), response.get_json()
    elif way == "extension":
        app = Flask(__name__)
        mail = MailGateway(app, settings=make_settings(**settings))
        with app.app_context():
            mail.send(EmailMessage("Hello", "From the extension.", "app@example.com", ["friend@example.com"]))
    elif way == "ingress":
        with smtplib.SMTP(HOST, ingress_factory(**settings).port, timeout=DEADLINE_SECONDS) as client:
            assert client.sendmail("app@example.com", ["friend@example.com"], RAW) == {}
    else:
        queued = queued_app(make_settings, **settings)
        queued_apps.append(queued)
        queued.wait_status(queued.send(HELLO)["id"], "delivered")


@pytest.mark.parametrize("way", ["http", "batch", "raw", "extension", "ingress", "queued"])
def test_every_way_in_sends_rsa_and_ed25519_signatures_that_verify(way, keys, smtp_server_factory, make_settings,
                                                                   ingress_factory, queued_apps, caplog) -> None:
    upstream = smtp_server_factory(Upstream())
    delivery = upstream.queued_settings() if way == "queued" else upstream.settings()  # the queue retries itself
    with caplog.at_level(logging.INFO, logger="mail_gateway.delivery"):
        send_by(way, {**delivery, **keys.settings}, make_settings, ingress_factory, queued_apps)
    assert upstream.handler.received
    for _, data in upstream.handler.received:
        assert verified(data, keys.dnsfunc) == ["s2026", "ed2026"]
        assert [tags[b"a"] for tags in signatures(data)] == [b"rsa-sha256", b"ed25519-sha256"]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("delivery ")]
    assert lines and all(" dkim=s2026,ed2026" in line for line in lines), lines


def test_the_signature_oversigns_the_fields_that_must_not_be_added_later(keys, smtp_server_factory,
                                                                         make_settings) -> None:
    upstream = smtp_server_factory(Upstream())
    client = create_app(make_settings(**upstream.settings(), **keys.settings)).test_client()
    assert client.post("/v1/messages", json={**HELLO, "cc": ["copy@example.com"]}).status_code == 202
    [(_, data)] = upstream.handler.received
    assert verified(data, keys.dnsfunc) == ["s2026", "ed2026"]
    for tags in signatures(data):
        assert tags[b"c"] == b"relaxed/relaxed"
        signed = re.split(rb"\s*:\s*", tags[b"h"])
        for name in (b"from", b"to", b"subject", b"date", b"message-id"):
            assert signed.count(name) == 2, (name, signed)  # one more than the message holds
        assert signed.count(b"cc") == 1 and b"mime-version" in signed
    added = data.replace(b"\r\n\r\n", b"\r\nSubject: Not what was signed\r\n\r\n", 1)
    assert verified(added, keys.dnsfunc) == []


def test_a_tampered_header_fails_verification(keys, smtp_server_factory, make_settings) -> None:
    upstream = smtp_server_factory(Upstream())
    client = create_app(make_settings(**upstream.settings(), **keys.settings)).test_client()
    assert client.post("/v1/messages", json=HELLO).status_code == 202
    [(_, data)] = upstream.handler.received
    assert verified(data, keys.dnsfunc) == ["s2026", "ed2026"]
    assert verified(data.replace(b"Subject: Hello", b"Subject: Hullo"), keys.dnsfunc) == []
    assert verified(data.replace(b"sent from Flask", b"sent from elsewhere"), keys.dnsfunc) == []


# -- what is signed: the bytes that go on the wire ---------------------------------------------------------------

def test_8bit_text_to_an_upstream_without_8bitmime_is_signed_as_the_7bit_form_it_receives(
        keys, smtp_server_factory, make_settings) -> None:
    seven_bit = smtp_server_factory(Upstream(), decode_data=True, enable_SMTPUTF8=False)
    client = create_app(make_settings(**seven_bit.settings(), **keys.settings)).test_client()
    assert client.post("/v1/messages", json={**HELLO, "text": TEXT}).status_code == 202
    [(options, data)] = seven_bit.handler.received
    assert data.isascii() and not any(option.startswith("BODY=") for option in options)
    assert verified(data, keys.dnsfunc) == ["s2026", "ed2026"]


def test_attachments_are_signed(keys, smtp_server_factory, make_settings) -> None:
    upstream = smtp_server_factory(Upstream())
    client = create_app(make_settings(**upstream.settings(), **keys.settings)).test_client()
    attachment = {"filename": "report.bin", "content_type": "application/octet-stream",
                  "content": base64.b64encode(bytes(range(256)) * 40).decode()}
    response = client.post("/v1/messages", json={**HELLO, "html": "<p>Hi</p>", "attachments": [attachment]})
    assert response.status_code == 202, response.get_json()
    [(_, data)] = upstream.handler.received
    assert b"report.bin" in data and verified(data, keys.dnsfunc) == ["s2026", "ed2026"]


def test_an_smtputf8_message_is_signed_as_it_goes_to_an_smtputf8_upstream(keys, smtp_server_factory,
                                                                           make_settings) -> None:
    upstream = smtp_server_factory(Upstream(), enable_SMTPUTF8=True)
    client = create_app(make_settings(**upstream.settings(), **keys.settings)).test_client()
    response = client.post("/v1/messages", json={**HELLO, "from": "jörg@example.com", "text": TEXT})
    assert response.status_code == 202, response.get_json()
    [(options, data)] = upstream.handler.received
    assert "SMTPUTF8" in options and "From: jörg@example.com\r\n".encode() in data
    assert verified(data, keys.dnsfunc) == ["s2026", "ed2026"]


def test_a_relayed_message_keeps_another_domains_valid_signature_and_gets_the_gateways(
        keys, smtp_server_factory, make_settings) -> None:
    relay_key = ed25519.Ed25519PrivateKey.generate()
    seed = relay_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                   serialization.NoEncryption())
    theirs = dkim.sign(RAW, b"list", b"relay.example", base64.b64encode(seed), signature_algorithm=b"ed25519-sha256",
                       include_headers=[b"from", b"to", b"subject"], canonicalize=(b"relaxed", b"relaxed"))
    records = {**keys.records, b"list._domainkey.relay.example.": ed25519_record(relay_key)}
    upstream = smtp_server_factory(Upstream())
    client = create_app(make_settings(**upstream.settings(), **keys.settings)).test_client()
    assert client.post("/v1/messages/raw", json=raw_request(theirs + RAW)).status_code == 202
    [(_, data)] = upstream.handler.received
    assert verified(data, lambda name, timeout=5: records.get(name)) == ["s2026", "ed2026", "list"]


# -- domains without a key, and the log ---------------------------------------------------------------------------

def test_a_from_domain_without_a_key_goes_out_unsigned_and_the_log_says_dkim_none(keys, smtp_server_factory,
                                                                                   make_settings, caplog) -> None:
    upstream = smtp_server_factory(Upstream())
    client = create_app(make_settings(**upstream.settings(), **keys.settings)).test_client()
    with caplog.at_level(logging.INFO, logger="mail_gateway.delivery"):
        assert client.post("/v1/messages", json={**HELLO, "from": "app@other.example"}).status_code == 202
        assert client.post("/v1/messages", json=HELLO).status_code == 202
    [(_, unsigned), (_, signed)] = upstream.handler.received
    assert b"DKIM-Signature" not in unsigned and len(signatures(signed)) == 2
    first, second = (r for r in caplog.records if r.getMessage().startswith("delivery "))
    assert " dkim=none" in first.getMessage() and first.delivery["dkim"] == "none"
    assert " dkim=s2026,ed2026" in second.getMessage()


def test_a_gateway_without_keys_logs_dkim_none_and_signs_nothing(make_settings, caplog) -> None:
    sender, _ = build_sender(make_settings(mail_backend="memory"))
    assert "dkim" not in sender.pipeline.names
    with caplog.at_level(logging.INFO, logger="mail_gateway.delivery"):
        sender.send_raw("app@example.com", ["friend@example.com"], RAW, via="library")
    [record] = [r for r in caplog.records if r.getMessage().startswith("delivery ")]
    assert " dkim=none" in record.getMessage()


def test_the_dkim_step_signs_last_after_every_other_step(keys, make_settings) -> None:
    sender, _ = build_sender(make_settings(mail_backend="memory", **keys.settings))
    assert sender.pipeline.names == ("strip-bcc", "transfer-encoding", "dkim")


def sign_raw(keys: Keys, make_settings, message: bytes = RAW, **settings: str) -> RenderedMessage:
    step = DkimSigning.from_settings(make_settings(**keys.settings, **settings).dkim)
    assert step is not None
    rendered = RenderedMessage("<raw-1@example.com>", "app@example.com", ("friend@example.com",), message)
    return step(rendered, StepContext(via="http", backend="memory"))


def test_an_rsa_key_is_read_at_start_up_not_again_for_each_message(keys, make_settings, monkeypatch) -> None:
    """A key is read once, when the sender is built: reading a 2048-bit PEM costs about a third of a signature."""
    step = DkimSigning.from_settings(make_settings(**keys.settings).dkim)

    def refuse(*args, **kwargs):
        raise AssertionError("a key was read while signing")

    monkeypatch.setattr(serialization, "load_pem_private_key", refuse)
    assert step is not None
    signed = step(RenderedMessage("<raw-1@example.com>", "app@example.com", ("friend@example.com",), RAW),
                  StepContext(via="http", backend="memory"))
    assert verified(signed.data, keys.dnsfunc) == ["s2026", "ed2026"]


def test_a_message_signed_with_two_keys_is_read_and_canonicalized_once(keys, make_settings, monkeypatch) -> None:
    calls: list[str] = []
    for name in ("_read", "_body_hash"):
        original = getattr(dkim_signature, name)
        monkeypatch.setattr(dkim_signature, name,
                            lambda *args, _original=original, _name=name: calls.append(_name) or _original(*args))
    signed = sign_raw(keys, make_settings)
    assert [tags[b"a"] for tags in signatures(signed.data)] == [b"rsa-sha256", b"ed25519-sha256"]
    assert verified(signed.data, keys.dnsfunc) == ["s2026", "ed2026"]
    assert calls == ["_read", "_body_hash"]


def test_a_large_message_is_signed_without_copies_of_its_body(keys, make_settings) -> None:
    """The body of a 10 MB attachment is hashed where it lies; what is allocated is the signed message alone
    (dkimpy's signer split the body into lines and joined them again: 3.7 times its size)."""
    line = base64.b64encode(os.urandom(57)) + b"\r\n"
    large = RAW.replace(b"Raw body.\r\n", line * (10_000_000 // len(line)))
    tracemalloc.start()
    try:
        signed = sign_raw(keys, make_settings, large)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert verified(signed.data, keys.dnsfunc) == ["s2026", "ed2026"]
    assert peak < 1.2 * len(large), f"{peak / len(large):.2f} times the message"


# Messages whose whitespace, line endings, repeated and missing fields and empty lines at the end each of
# RFC 6376's canonicalizations treats in its own way.
AWKWARD = [
    RAW,
    b"From: a@example.com\r\nTo:  b@example.org ,\r\n\t c@example.org \r\nSubject:\tsp  aces\t\r\n"
    b"subject: two\r\n\r\nline  with   spaces \t\r\n\ttabbed\r\n\r\n\r\n",
    b"From: a@example.com\nTo: b@example.org\nSubject: LF only\n\nbody\nmore\n\n",
    b"From: a@example.com\r\nSubject: empty body\r\n\r\n",
    b"From: a@example.com\r\nSubject: no body at all\r\n",
    b"From: a@example.com\r\nSubject: no line end\r\n\r\nlast line without one",
    b"From: a@example.com\r\nSubject: bare CR\r\n\r\nbare\rcr\r\n\r\n \r\n",
    b"From a@example.com Mon Feb  2 10:00:00 2026\r\nFrom: a@example.com\r\nDate: x\r\n\r\n\r\n\r\n",
    b"From: a@example.com\r\nX-Spaces: y\r\n\r\n" + b"a  b\t c \r\n" * 50 + b"\t\r\n \r\n",
]


@pytest.mark.parametrize("canonicalization", ["relaxed/relaxed", "relaxed/simple", "simple/relaxed",
                                              "simple/simple"])
@pytest.mark.parametrize("message", AWKWARD, ids=range(len(AWKWARD)))
def test_the_signature_field_is_the_one_dkimpy_makes_byte_for_byte(message, canonicalization, keys,
                                                                    make_settings) -> None:
    """The gateway makes the field itself (``sending/dkim_signature.py``) rather than through dkimpy's signer;
    RSA PKCS #1 v1.5 and Ed25519 signatures are deterministic, so both must make the same bytes."""
    signed = sign_raw(keys, make_settings, message, gateway_dkim_canonicalization=canonicalization).data
    ours = signed[:len(signed) - len(message)]
    listed = [name.strip() for name in signatures(signed)[0][b"h"].split(b":")]
    timestamp = int(signatures(signed)[0][b"t"])
    theirs = b""
    for selector, algorithm, private in ((b"s2026", b"rsa-sha256", keys.rsa_path.read_bytes()),
                                         (b"ed2026", b"ed25519-sha256", keys.ed_path.read_bytes().strip())):
        signer = dkim.DKIM(message, linesep=b"\r\n")
        with mock.patch.object(dkim.time, "time", return_value=timestamp):
            theirs += signer.sign(selector, b"example.com", private, algorithm, include_headers=listed,
                                  canonicalize=tuple(canonicalization.encode().split(b"/")))
    assert ours == theirs
    assert verified(signed, keys.dnsfunc) == ["s2026", "ed2026"]


@pytest.mark.parametrize("header", [b" continued: before any field\r\n", b"Subject : space before the colon\r\n",
                                    b"no colon at all\r\n"])
def test_a_header_block_that_is_no_header_block_is_a_problem_not_a_signature(header, keys, make_settings) -> None:
    client = create_app(make_settings(mail_backend="memory", **keys.settings)).test_client()
    response = client.post("/v1/messages/raw", json=raw_request(header + RAW))
    assert response.status_code == 422 and response.content_type == "application/problem+json"
    [error] = response.get_json()["errors"]
    assert error["field"] == "data" and "cannot be DKIM-signed" in error["message"], error
    assert "send a well-formed RFC 5322 message" in error["message"]


def test_a_key_may_come_from_an_environment_variable_and_never_shows(keys, make_settings, monkeypatch) -> None:
    pem = keys.rsa_path.read_text()
    monkeypatch.setenv("DKIM_EXAMPLE_KEY", pem)
    settings = make_settings(mail_backend="memory", gateway_dkim_keys="example.com:s2026:env:DKIM_EXAMPLE_KEY")
    sender, _ = build_sender(settings)
    result = sender.send_raw("app@example.com", ["friend@example.com"], RAW, via="library")
    [kept] = sender.backend.messages
    assert result.message_id and verified(kept.data, keys.dnsfunc) == ["s2026"]
    secret = pem.splitlines()[5]
    step = sender.pipeline.steps[-1]
    assert secret not in repr(step) and secret not in repr(sender.settings) and secret not in repr(step.keys)


# -- start-up refusals ---------------------------------------------------------------------------------------------

def small_rsa_pem(bits: int = 512) -> bytes:
    """An RSA key too short to sign with; cryptography no longer generates one, so it is built from primes."""
    rng = random.Random(20260202)

    def prime(size: int) -> int:
        while True:
            n = rng.getrandbits(size) | (3 << (size - 2)) | 1
            if all(pow(a, n - 1, n) == 1 for a in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)):
                return n

    e = 65537
    while True:
        p, q = prime(bits // 2), prime(bits // 2)
        if p != q and gcd(e, (p - 1) * (q - 1)) == 1:
            break
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p), rsa.RSAPublicNumbers(e, p * q))
    return numbers.private_key().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption())


@pytest.mark.parametrize(("content", "said"), [
    (None, "cannot be read"),
    (b"-----BEGIN PRIVATE KEY-----\nnot-a-key-SECRET-LOOKING-TEXT\n-----END PRIVATE KEY-----\n", "not a private key"),
    (b"SECRET-LOOKING-TEXT", "not a private key"),
    (small_rsa_pem(), "512-bit RSA key"),
])
def test_a_key_that_cannot_sign_stops_start_up_naming_the_setting_and_the_fix(content, said, make_settings,
                                                                                tmp_path) -> None:
    path = tmp_path / "example.com.key"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigurationError) as caught:
        create_app(make_settings(mail_backend="memory", gateway_dkim_keys=f"example.com:s2026:{path}"))
    message = str(caught.value)
    assert caught.value.variable == "GATEWAY_DKIM_KEYS" and said in message, message
    assert "s2026._domainkey.example.com" in message and "mail-gateway dkim keygen" in message
    assert "SECRET" not in message and "\n" not in message


@pytest.mark.parametrize(("values", "said"), [
    ({"GATEWAY_DKIM_KEYS": "example.com:/etc/key"}, "domain:selector:"),
    ({"GATEWAY_DKIM_KEYS": "example.com:s 1:/etc/key"}, "selector"),
    ({"GATEWAY_DKIM_KEYS": "example.com:s1:/a,example.com:s1:/b"}, "twice"),
    ({"GATEWAY_DKIM_KEYS": "example.com:s1:env:"}, "environment variable"),
    ({"GATEWAY_DKIM_HEADERS": "To, Subject"}, "From"),
    ({"GATEWAY_DKIM_HEADERS": "From, Received"}, "Received"),
    ({"GATEWAY_DKIM_CANONICALIZATION": "loose"}, "relaxed/relaxed"),
])
def test_malformed_dkim_settings_stop_start_up_naming_the_setting(values, said, monkeypatch) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings(_env_file=None)
    assert caught.value.variable == next(iter(values)) and said in str(caught.value), str(caught.value)


def pasted_keys() -> list[str]:
    """A key written into GATEWAY_DKIM_KEYS itself: an Ed25519 seed as dkimpy's files hold it, a PEM whose line
    breaks an environment file wrote as \\n, and a PEM's base64 on one line."""
    seed = base64.b64encode(ed25519.Ed25519PrivateKey.generate().private_bytes_raw()).decode()
    pem = small_rsa_pem(1024).decode()
    body = "".join(pem.splitlines()[1:-1])
    return [seed, pem.strip().replace("\n", "\\n"), body]


@pytest.mark.parametrize("pasted", pasted_keys(), ids=["ed25519-seed", "pem-written-with-backslash-n", "pem-body"])
def test_a_key_written_where_its_path_belongs_stops_start_up_without_showing_it(pasted, monkeypatch) -> None:
    # Taken for a file's path, it was shown as that path: "the key of s1._domainkey.example.com (<the key>) cannot
    # be read (No such file or directory)", in every start-up refusal and in mail-gateway check's output.
    monkeypatch.setenv("GATEWAY_DKIM_KEYS", f"example.com:s1:{pasted}")
    done = CliRunner().invoke(main, ["check"])
    assert done.exit_code == 1 and "GATEWAY_DKIM_KEYS" in done.output and "env:NAME" in done.output, done.output
    secret = pasted.removeprefix("-----BEGIN PRIVATE KEY-----\\n")[:24]
    assert secret not in done.output and "PRIVATE KEY" not in done.output, done.output


def test_a_key_file_read_from_the_environment_variable_form_that_is_unset_is_refused(make_settings) -> None:
    with pytest.raises(ConfigurationError, match="DKIM_UNSET_KEY"):
        create_app(make_settings(mail_backend="memory", gateway_dkim_keys="example.com:s1:env:DKIM_UNSET_KEY"))


# -- dkim keygen -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("options", [[], ["--ed25519"]])
def test_keygen_writes_a_private_key_whose_printed_record_verifies_its_signatures(options, tmp_path,
                                                                                 make_settings) -> None:
    out = tmp_path / "keys" / "new.key"
    out.parent.mkdir()
    result = CliRunner().invoke(main, ["dkim", "keygen", "Example.COM", "k1", "--out", str(out), *options])
    assert result.exit_code == 0, result.output
    assert os.stat(out).st_mode & 0o777 == 0o600
    [line] = result.stdout.splitlines()
    assert line.startswith('k1._domainkey.example.com. IN TXT "v=DKIM1; k=' + ("ed25519" if options else "rsa"))
    record = "".join(re.findall(r'"([^"]*)"', line)).encode()
    sender, _ = build_sender(make_settings(mail_backend="memory", gateway_dkim_keys=f"example.com:k1:{out}"))
    sender.send_raw("app@example.com", ["friend@example.com"], RAW, via="library")
    [kept] = sender.backend.messages
    found = {b"k1._domainkey.example.com.": record}
    assert verified(kept.data, lambda name, timeout=5: found.get(name)) == ["k1"]
    assert out.read_text() not in result.output


def test_keygen_never_overwrites_a_key(tmp_path) -> None:
    out = tmp_path / "kept.key"
    out.write_text("an existing key")
    result = CliRunner().invoke(main, ["dkim", "keygen", "example.com", "k1", "--out", str(out)])
    assert result.exit_code != 0 and "exists" in result.output
    assert out.read_text() == "an existing key"



@pytest.mark.parametrize(("arguments", "said"), [
    (["bad domain", "k1"], "Invalid value for DOMAIN: 'bad domain' has no IDNA 2008 form"),
    (["example.com", "k_1"], "Invalid value for SELECTOR: 'k_1': the selector must be letters"),
])
def test_keygen_names_the_argument_it_refuses(tmp_path, arguments, said) -> None:
    result = CliRunner().invoke(main, ["dkim", "keygen", *arguments, "--out", str(tmp_path / "new.key")])
    assert result.exit_code == 2 and said in result.output and "Traceback" not in result.output
    assert not (tmp_path / "new.key").exists()

# -- mail-gateway check: the published keys ------------------------------------------------------------------------

def check(keys: Keys, monkeypatch, server: DnsServer):
    monkeypatch.setenv("MAIL_BACKEND", "memory")
    monkeypatch.setenv("GATEWAY_DKIM_KEYS", keys.settings["gateway_dkim_keys"])
    try:
        return CliRunner().invoke(main, ["check", "--dns-server", server.address])
    finally:
        server.stop()


def zone(keys: Keys, **replaced: bytes) -> dict[str, dict[str, list[str]]]:
    records = {"example.com.": {"SOA": ["ns.example.com. admin.example.com. 1 7200 3600 1209600 300"]}}
    for name, value in keys.records.items():
        text = replaced.get(name.decode().split(".")[0], value).decode()
        records[name.decode()] = {"TXT": [txt_strings(text)]}
    return records


def test_check_says_each_published_key_matches(keys, monkeypatch) -> None:
    result = check(keys, monkeypatch, DnsServer(zone(keys)))
    assert result.exit_code == 0, result.output
    assert "DKIM s2026._domainkey.example.com (rsa-sha256): the published key matches" in result.output
    assert "DKIM ed2026._domainkey.example.com (ed25519-sha256): the published key matches" in result.output


def test_check_fails_for_a_key_published_differently_or_not_at_all(keys, monkeypatch) -> None:
    records = zone(keys, s2026=ed25519_record(ed25519.Ed25519PrivateKey.generate()))
    del records["ed2026._domainkey.example.com."]
    result = check(keys, monkeypatch, DnsServer(records))
    assert result.exit_code == 1, result.output
    assert "s2026._domainkey.example.com (rsa-sha256): DNS publishes another key" in result.output
    assert "ed2026._domainkey.example.com (ed25519-sha256): no DKIM record is published" in result.output
    assert 'publish: ed2026._domainkey.example.com. IN TXT "v=DKIM1; k=ed25519; p=' in result.output


@pytest.mark.parametrize("resolver", ["failing", "knowing-no-domain"])
def test_check_without_working_dns_says_it_could_not_check_and_passes(resolver, keys, monkeypatch) -> None:
    # A resolver that cannot reach the domain's servers answers SERVFAIL; one cut off from the internet (as in
    # CI) may answer NXDOMAIN for every name, the domain's own included.
    dns_server = DnsServer(rcode=dns.rcode.SERVFAIL) if resolver == "failing" else DnsServer()
    result = check(keys, monkeypatch, dns_server)
    assert result.exit_code == 0, result.output
    assert result.output.count("could not check") == 2 and "publish:" not in result.output
