"""TLS that verifies: STARTTLS and implicit TLS against certificates made at test time with trustme."""

from __future__ import annotations

import datetime
import ipaddress
import ssl

import pytest
import trustme
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flask_mailman import EmailMultiAlternatives
from smtp_server import HOST, RecordingHandler

from mail_gateway import create_app
from mail_gateway.backends.registry import create_backend
from mail_gateway.cli import main
from mail_gateway.errors import ConfigurationError, DeliveryError, PermanentDeliveryError
from mail_gateway.settings import load_settings


def message() -> EmailMultiAlternatives:
    return EmailMultiAlternatives("Hi", "Body", "app@example.com", ["a@example.com"])


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def untrusted_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def cafile(ca, tmp_path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def server_context(ca: trustme.CA, name: str = HOST, client_ca: trustme.CA | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(context)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        client_ca.configure_trust(context)
    return context


# The two ways of speaking TLS: the aiosmtpd argument that enables it, and the gateway setting that uses it.
MODES = {"starttls": ("tls_context", "mail_use_tls"), "implicit": ("ssl_context", "mail_use_ssl")}


@pytest.fixture
def tls_backend(make_settings, smtp_server_factory):
    built = []

    def build(mode: str, context: ssl.SSLContext, **overrides):
        server_arg, setting = MODES[mode]
        server = smtp_server_factory(RecordingHandler(), **{server_arg: context})
        backend = create_backend(make_settings(**server.settings(**{setting: True}, **overrides)))
        built.append(backend)
        return server, backend

    yield build
    for backend in built:
        backend.close()


@pytest.mark.parametrize("mode", MODES)
def test_a_certificate_from_the_configured_ca_is_trusted(tls_backend, ca, cafile, mode) -> None:
    server, backend = tls_backend(mode, server_context(ca), mail_ssl_cafile=cafile)
    [result] = backend.send_messages([message()])
    assert result.accepted and len(server.messages) == 1


@pytest.mark.parametrize("mode", MODES)
def test_an_untrusted_certificate_is_refused(tls_backend, untrusted_ca, cafile, mode) -> None:
    server, backend = tls_backend(mode, server_context(untrusted_ca), mail_ssl_cafile=cafile)
    with pytest.raises(PermanentDeliveryError, match="certificate not trusted"):
        backend.send_messages([message()])
    assert server.messages == []


def self_signed(tmp_path) -> tuple[ssl.SSLContext, str]:
    """A server context presenting a certificate for HOST that signed itself, and that certificate's file."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "self-signed upstream")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
                                  critical=False)
                   .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "self-signed.pem", tmp_path / "self-signed.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert_file), str(key_file))
    return context, str(cert_file)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("signed", ["self", "unknown-ca"])
def test_an_unverifiable_certificate_names_mail_ssl_cafile_as_the_fix(tls_backend, untrusted_ca, cafile, tmp_path,
                                                                      mode, signed) -> None:
    context = self_signed(tmp_path)[0] if signed == "self" else server_context(untrusted_ca)
    server, backend = tls_backend(mode, context, mail_ssl_cafile=cafile)
    with pytest.raises(PermanentDeliveryError) as caught:
        backend.send_messages([message()])
    reason = "self-signed certificate" if signed == "self" else "unable to get local issuer certificate"
    assert f"TLS certificate not trusted: {reason}; set MAIL_SSL_CAFILE to" in str(caught.value)
    assert server.messages == []


@pytest.mark.parametrize("mode", MODES)
def test_a_self_signed_certificate_named_in_mail_ssl_cafile_is_trusted(tls_backend, tmp_path, mode) -> None:
    context, certificate = self_signed(tmp_path)  # the fix the refusal above names
    server, backend = tls_backend(mode, context, mail_ssl_cafile=certificate)
    [result] = backend.send_messages([message()])
    assert result.accepted and len(server.messages) == 1


@pytest.mark.parametrize("mode", MODES)
def test_a_certificate_for_another_host_is_refused(tls_backend, ca, cafile, mode) -> None:
    server, backend = tls_backend(mode, server_context(ca, name="mail.example.org"), mail_ssl_cafile=cafile)
    with pytest.raises(PermanentDeliveryError, match="not trusted.*mismatch.*host name the certificate names"):
        backend.send_messages([message()])
    assert server.messages == []


def test_starttls_required_but_not_offered_fails_closed(smtp_server, make_settings) -> None:
    client = create_app(make_settings(**smtp_server.settings(mail_use_tls=True))).test_client()
    response = client.post("/v1/messages", json={"from": "app@example.com", "to": ["a@example.com"], "text": "x"})
    assert response.status_code == 502 and "STARTTLS" in response.get_json()["detail"]
    assert smtp_server.messages == []


def test_a_login_the_upstream_does_not_offer_auth_for_is_named_as_such(smtp_server, make_settings) -> None:
    settings = make_settings(**smtp_server.settings(mail_username="app", mail_password="long-random-secret"))
    client = create_app(settings).test_client()
    response = client.post("/v1/messages", json={"from": "app@example.com", "to": ["a@example.com"], "text": "x"})
    detail = response.get_json()["detail"]
    assert response.status_code == 502 and "AUTH" in detail and "STARTTLS" not in detail
    assert smtp_server.messages == []


def test_an_untrusted_certificate_is_a_clear_502(smtp_server_factory, make_settings, untrusted_ca) -> None:
    server = smtp_server_factory(RecordingHandler(), tls_context=server_context(untrusted_ca))
    client = create_app(make_settings(**server.settings(mail_use_tls=True))).test_client()
    response = client.post("/v1/messages", json={"from": "app@example.com", "to": ["a@example.com"], "text": "x"})
    assert response.status_code == 502 and response.mimetype == "application/problem+json"
    assert "certificate not trusted" in response.get_json()["detail"]


@pytest.mark.parametrize("mode", MODES)
def test_the_client_certificate_is_really_presented(tls_backend, ca, cafile, tmp_path, mode) -> None:
    client_ca = trustme.CA()
    client_pem = tmp_path / "client.pem"
    client_ca.issue_cert("gateway.example.com", common_name="gateway client").private_key_and_cert_chain_pem \
        .write_to_path(str(client_pem))
    server, backend = tls_backend(mode, server_context(ca, client_ca=client_ca), mail_ssl_cafile=cafile,
                                  mail_ssl_certfile=str(client_pem))
    backend.send_messages([message()])
    [certificate] = server.handler.client_certificates
    assert (("commonName", "gateway client"),) in certificate["subject"]


def test_without_the_client_certificate_the_server_refuses(tls_backend, ca, cafile) -> None:
    server, backend = tls_backend("implicit", server_context(ca, client_ca=trustme.CA()), mail_ssl_cafile=cafile,
                                  mail_retry_attempts=1)
    with pytest.raises(DeliveryError):
        backend.send_messages([message()])
    assert server.messages == []


def test_separate_certificate_and_key_files(tls_backend, ca, cafile, tmp_path) -> None:
    client_ca = trustme.CA()
    leaf = client_ca.issue_cert("gateway.example.com", common_name="split files")
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    leaf.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    server, backend = tls_backend("starttls", server_context(ca, client_ca=client_ca), mail_ssl_cafile=cafile,
                                  mail_ssl_certfile=str(tmp_path / "cert.pem"),
                                  mail_ssl_keyfile=str(tmp_path / "key.pem"))
    backend.send_messages([message()])
    assert (("commonName", "split files"),) in server.handler.client_certificates[0]["subject"]


@pytest.mark.parametrize(
    ("files", "variable"),
    [
        ({"mail_ssl_cafile": "missing-ca.pem"}, "MAIL_SSL_CAFILE"),
        ({"mail_ssl_cafile": "garbage.pem"}, "MAIL_SSL_CAFILE"),
        ({"mail_ssl_certfile": "missing-cert.pem"}, "MAIL_SSL_CERTFILE"),
        ({"mail_ssl_certfile": "garbage.pem"}, "MAIL_SSL_CERTFILE"),
        ({"mail_ssl_certfile": "cert.pem", "mail_ssl_keyfile": "missing-key.pem"}, "MAIL_SSL_KEYFILE"),
    ],
)
def test_unusable_tls_files_fail_at_start_up_naming_the_variable(make_settings, tmp_path, ca, files,
                                                                 variable) -> None:
    (tmp_path / "garbage.pem").write_text("not a certificate")
    ca.issue_cert("x.example.com").cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    settings = make_settings(mail_backend="smtp", mail_server=HOST, mail_use_tls=True,
                             **{k: str(tmp_path / v) for k, v in files.items()})
    with pytest.raises(ConfigurationError) as caught:
        create_backend(settings)
    assert caught.value.variable == variable and variable in str(caught.value)


def test_a_key_without_a_certificate_is_a_configuration_error(monkeypatch) -> None:
    monkeypatch.setenv("MAIL_SSL_KEYFILE", "key.pem")
    with pytest.raises(ConfigurationError, match="MAIL_SSL_KEYFILE is set without MAIL_SSL_CERTFILE"):
        load_settings(_env_file=None)


def test_check_reports_tls_version_and_certificate(smtp_server_factory, ca, cafile, monkeypatch) -> None:
    server = smtp_server_factory(RecordingHandler(), tls_context=server_context(ca))
    for name, value in server.settings(mail_use_tls=True, mail_ssl_cafile=cafile).items():
        monkeypatch.setenv(name.upper(), str(value))
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 0, result.output
    assert "STARTTLS" in result.output and "TLSv1.3" in result.output and "organizationName=trustme" in result.output


def test_check_fails_with_one_line_on_an_untrusted_certificate(smtp_server_factory, untrusted_ca,
                                                               monkeypatch) -> None:
    server = smtp_server_factory(RecordingHandler(), ssl_context=server_context(untrusted_ca))
    for name, value in server.settings(mail_use_ssl=True).items():
        monkeypatch.setenv(name.upper(), str(value))
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error:") and "certificate not trusted" in last
