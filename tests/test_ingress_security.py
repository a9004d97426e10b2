"""The SMTP ingress is not an open relay: where it may listen, AUTH, STARTTLS, and secrets kept out of sight."""

from __future__ import annotations

import base64
import logging
import os
import pty
import select
import signal
import smtplib
import socket
import ssl
import sys
import time

import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from ingress_support import message_bytes, wait_until

from mail_gateway.errors import ConfigurationError
from mail_gateway.ingress.security import check_exposure
from mail_gateway.ingress.server import IngressServer
from mail_gateway.settings import load_settings

SENDER, RECIPIENT = "app@example.com", "friend@example.com"
USERS = "app:correct-horse,cron:battery-staple"



@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_files(ca, tmp_path) -> dict[str, str]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    return {"gateway_smtp_tls_cert": str(cert_path), "gateway_smtp_tls_key": str(key_path)}


@pytest.fixture
def client_context(ca) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def _plain(user: str, password: str) -> str:
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


def test_auth_is_required_when_users_are_set(ingress_factory) -> None:
    ingress = ingress_factory(mail_backend="memory", gateway_smtp_users=USERS, gateway_smtp_allow_insecure_auth=True)
    with ingress.client() as client, pytest.raises(smtplib.SMTPSenderRefused) as refused:
        client.sendmail(SENDER, [RECIPIENT], message_bytes())
    assert refused.value.smtp_code == 530
    assert ingress.backend.messages == []


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_a_wrong_password_is_refused_with_535(ingress_factory, mechanism, caplog) -> None:
    ingress = ingress_factory(mail_backend="memory", gateway_smtp_users=USERS, gateway_smtp_allow_insecure_auth=True)
    with caplog.at_level(logging.DEBUG), ingress.client() as client:
        client.ehlo()
        client.user, client.password = "app", "wrong-password"
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            client.auth(mechanism, getattr(client, f"auth_{mechanism.lower()}"))
        assert refused.value.smtp_code == 535
        assert client.mail(SENDER)[0] == 530
    assert "wrong-password" not in caplog.text


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_a_known_user_may_send_and_is_named_in_the_log(ingress_factory, mechanism, caplog) -> None:
    ingress = ingress_factory(mail_backend="memory", gateway_smtp_users=USERS, gateway_smtp_allow_insecure_auth=True)
    with caplog.at_level(logging.DEBUG), ingress.client() as client:
        client.ehlo()
        client.user, client.password = "cron", "battery-staple"
        assert client.auth(mechanism, getattr(client, f"auth_{mechanism.lower()}"))[0] == 235
        assert client.sendmail(SENDER, [RECIPIENT], message_bytes()) == {}
    assert len(ingress.backend.messages) == 1
    assert "user=cron" in caplog.text
    assert "battery-staple" not in caplog.text and _plain("cron", "battery-staple") not in caplog.text


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_an_auth_answer_sent_unencoded_is_not_logged_even_at_debug(ingress_factory, mechanism, caplog) -> None:
    # A client that answers AUTH's challenge with the password as it is, not in base64: aiosmtpd logged the line
    # it could not decode, at DEBUG, on its mail.log logger, which the gateway leaves at the application's level.
    ingress = ingress_factory(mail_backend="memory", gateway_smtp_users=USERS, gateway_smtp_allow_insecure_auth=True)
    with caplog.at_level(logging.DEBUG, logger="mail.log"), ingress.client() as client:
        client.ehlo()
        assert client.docmd("AUTH", mechanism)[0] == 334
        if mechanism == "LOGIN":
            assert client.docmd(base64.b64encode(b"app").decode())[0] == 334
        assert client.docmd("\0app\0correct-horse!" if mechanism == "PLAIN" else "correct-horse!")[0] == 501
    assert "can't decode base64" in caplog.text  # the line was logged, without what the client sent
    assert "correct-horse" not in caplog.text


def test_a_password_sent_as_a_command_after_a_failed_auth_is_not_logged(ingress_factory, caplog) -> None:
    # A client whose AUTH LOGIN failed (its user name not in base64) sends the password as the next command line:
    # aiosmtpd logged it at INFO ("%r >> %r") and again as an unrecognised command at WARNING.
    ingress = ingress_factory(mail_backend="memory", gateway_smtp_users=USERS, gateway_smtp_allow_insecure_auth=True)
    with caplog.at_level(logging.DEBUG, logger="mail.log"), ingress.client() as client:
        client.ehlo()
        assert client.docmd("AUTH", "LOGIN")[0] == 334
        assert client.docmd("app")[0] == 501
        assert client.docmd("Sup3r-Secret-pw") == (500, b"5.5.2 Command not recognized; HELP lists the commands")
        assert client.noop()[0] == 250
    assert "unrecognised" in caplog.text and "noop" in caplog.text  # commands are still logged as they came
    assert "sup3r" not in caplog.text.lower()


def test_auth_before_starttls_is_refused_and_works_after_it(ingress_factory, tls_files, client_context) -> None:
    ingress = ingress_factory(mail_backend="memory", gateway_smtp_users=USERS, **tls_files)
    with ingress.client() as client:
        client.ehlo()
        assert client.has_extn("starttls") and not client.has_extn("auth")
        assert client.docmd("AUTH", f"PLAIN {_plain('app', 'correct-horse')}")[0] == 538
        client.starttls(context=client_context)
        client.ehlo()
        assert client.has_extn("auth")
        client.login("app", "correct-horse")
        assert client.sendmail(SENDER, [RECIPIENT], message_bytes()) == {}
    assert len(ingress.backend.messages) == 1


def test_starttls_inside_tls_is_refused_and_the_session_goes_on(ingress_factory, tls_files, client_context,
                                                                   caplog) -> None:
    # aiosmtpd answered 220 and started a second handshake inside the first: the session ended with asyncio's
    # "Fatal error on SSL protocol" and a traceback.
    ingress = ingress_factory(mail_backend="memory", gateway_smtp_users=USERS, **tls_files)
    with ingress.client() as client:
        client.starttls(context=client_context)
        client.ehlo()
        assert client.docmd("STARTTLS") == (503, b"5.5.1 TLS is already active; send EHLO")
        client.login("app", "correct-horse")
        assert client.sendmail(SENDER, [RECIPIENT], message_bytes()) == {}
    assert len(ingress.backend.messages) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_mechanism_named_in_lower_case_is_the_same_mechanism(ingress_factory) -> None:
    # RFC 4954 4: mechanism names are case-insensitive; aiosmtpd answered "auth plain ..." 504 Unrecognized.
    ingress = ingress_factory(mail_backend="memory", gateway_smtp_users=USERS, gateway_smtp_allow_insecure_auth=True)
    with ingress.client() as client:
        client.ehlo()
        assert client.docmd("auth", f"plain {_plain('app', 'correct-horse')}")[0] == 235
        assert client.sendmail(SENDER, [RECIPIENT], message_bytes()) == {}
    assert len(ingress.backend.messages) == 1


def test_an_auth_answer_longer_than_a_line_fails_the_auth_and_the_session_goes_on(ingress_factory, caplog) -> None:
    # asyncio's reader raised ValueError past its line limit: 451 4.3.0 and a traceback in the log.
    ingress = ingress_factory(mail_backend="memory", gateway_smtp_users=USERS, gateway_smtp_allow_insecure_auth=True)
    with ingress.client() as client:
        client.ehlo()
        assert client.docmd("AUTH", "LOGIN")[0] == 334
        code, reply = client.docmd("A" * 1020)
        assert (code, reply) == (500, b"5.5.6 The AUTH answer is longer than a line may be; AUTH failed"), reply
        assert client.noop()[0] == 250
        client.login("app", "correct-horse")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_only_login_and_plain_are_offered_after_starttls(ingress_factory, tls_files, client_context, caplog) -> None:
    ingress = ingress_factory(mail_backend="memory", gateway_smtp_users=USERS, **tls_files)
    with ingress.client() as client:
        client.starttls(context=client_context)
        client.ehlo()
        assert client.esmtp_features["auth"].split() == ["LOGIN", "PLAIN"]
        assert client.docmd("AUTH", "REQUIRED x")[0] == 504
        client.login("app", "correct-horse")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_starttls_with_a_test_certificate_carries_the_message(ingress_factory, tls_files, client_context) -> None:
    ingress = ingress_factory(mail_backend="memory", **tls_files)
    data = message_bytes()
    with ingress.client() as client:
        client.starttls(context=client_context)  # verifies the certificate and the host name
        assert client.sock.version() is not None
        assert client.sendmail(SENDER, [RECIPIENT], data) == {}
    assert ingress.backend.messages[0].data == data


def test_the_reply_to_starttls_carries_an_enhanced_code(ingress_factory, tls_files, client_context) -> None:
    ingress = ingress_factory(mail_backend="memory", **tls_files)
    with ingress.client() as client:
        client.ehlo()
        assert client.starttls(context=client_context) == (220, b"2.0.0 Ready to start TLS")
        assert client.sendmail(SENDER, [RECIPIENT], message_bytes()) == {}


def _failed_handshakes(port: int) -> None:
    """An unverified certificate, bytes that are not TLS, and a client gone after ``220 2.0.0 Ready to start TLS``."""
    with smtplib.SMTP("127.0.0.1", port, timeout=15) as client, pytest.raises(ssl.SSLCertVerificationError):
        client.starttls(context=ssl.create_default_context())  # the test CA is not trusted
    for after in (b"garbage, not a TLS record\r\n" * 20, b""):
        with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
            sock.sendall(b"EHLO x\r\nSTARTTLS\r\n")
            wait_until(lambda sock=sock: b"220 2.0.0 Ready" in sock.recv(4096, socket.MSG_PEEK), "STARTTLS is answered")
            sock.sendall(after)


def test_a_failed_tls_handshake_is_one_info_line_naming_the_peer(ingress_factory, tls_files, caplog) -> None:
    ingress = ingress_factory(mail_backend="memory", **tls_files)
    with caplog.at_level(logging.INFO):
        _failed_handshakes(ingress.port)
        wait_until(lambda: caplog.text.count("SMTP session with 127.0.0.1:") == 3, "each session's end is logged")
        ingress.server.stop()
    ended = [r for r in caplog.records if r.getMessage().startswith("SMTP session with")]
    assert [r.levelno for r in ended] == [logging.INFO] * 3
    assert "TLS handshake failed" in ended[0].getMessage() and "UNKNOWN_CA" in ended[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.mark.parametrize(
    ("values", "variable"),
    [
        ({"gateway_smtp_host": "0.0.0.0"}, "GATEWAY_SMTP_HOST"),
        ({"gateway_smtp_host": "8.8.8.8", "gateway_smtp_allow_private_without_auth": True}, "GATEWAY_SMTP_HOST"),
        ({"gateway_smtp_host": "10.1.2.3"}, "GATEWAY_SMTP_HOST"),
        ({"gateway_smtp_users": USERS}, "GATEWAY_SMTP_TLS_CERT"),
        ({"gateway_smtp_host": "10.1.2.3", "gateway_smtp_users": USERS, "gateway_smtp_allow_insecure_auth": True},
         "GATEWAY_SMTP_ALLOW_INSECURE_AUTH"),
        ({"gateway_smtp_host": "no-such-host.invalid"}, "GATEWAY_SMTP_HOST"),
        # Allowances that would change nothing: refused, not ignored.
        ({"gateway_smtp_allow_insecure_auth": True}, "GATEWAY_SMTP_ALLOW_INSECURE_AUTH"),
        ({"gateway_smtp_host": "10.1.2.3", "gateway_smtp_users": USERS, "gateway_smtp_tls_cert": "c",
          "gateway_smtp_tls_key": "k", "gateway_smtp_allow_private_without_auth": True},
         "GATEWAY_SMTP_ALLOW_PRIVATE_WITHOUT_AUTH"),
        ({"gateway_smtp_allow_private_without_auth": True}, "GATEWAY_SMTP_ALLOW_PRIVATE_WITHOUT_AUTH"),
    ],
    ids=["wildcard-without-auth", "public-without-auth", "private-without-auth", "auth-without-tls",
         "insecure-auth-off-loopback", "unresolvable", "insecure-auth-without-users", "private-allowed-with-users",
         "private-allowed-on-loopback"],
)
def test_configurations_that_would_relay_for_anyone_do_not_start(make_settings, values, variable) -> None:
    with pytest.raises(ConfigurationError) as refused:
        check_exposure(make_settings(**values))
    assert refused.value.variable == variable and variable in str(refused.value)


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"gateway_smtp_host": "localhost"},
        {"gateway_smtp_host": "10.1.2.3", "gateway_smtp_allow_private_without_auth": True},
        {"gateway_smtp_host": "0.0.0.0", "gateway_smtp_users": USERS, "gateway_smtp_tls_cert": "c",
         "gateway_smtp_tls_key": "k"},
        {"gateway_smtp_users": USERS, "gateway_smtp_allow_insecure_auth": True},
    ],
    ids=["default-loopback", "localhost", "private-allowed", "public-with-auth-and-tls", "loopback-dev-auth"],
)
def test_safe_configurations_pass_the_exposure_check(make_settings, values) -> None:
    check_exposure(make_settings(**values))


def test_an_unloadable_certificate_stops_start_up(make_settings, tmp_path) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate")
    settings = make_settings(mail_backend="memory", gateway_smtp_tls_cert=str(tmp_path / "cert.pem"),
                             gateway_smtp_tls_key=str(tmp_path / "cert.pem"))
    with pytest.raises(ConfigurationError) as refused:
        IngressServer(settings, sender=None)  # type: ignore[arg-type]
    assert refused.value.variable == "GATEWAY_SMTP_TLS_CERT"


def test_a_port_in_use_stops_start_up(ingress_factory, make_settings) -> None:
    running = ingress_factory(mail_backend="memory")
    server = IngressServer(make_settings(mail_backend="memory"), running.backend, port=running.port)
    with pytest.raises(ConfigurationError) as refused:
        server.start()
    assert refused.value.variable == "GATEWAY_SMTP_PORT"
    server.stop()


def test_a_malformed_user_list_names_the_variable_but_no_password(monkeypatch) -> None:
    monkeypatch.setenv("GATEWAY_SMTP_USERS", "app:correct-horse,cron-without-password")
    with pytest.raises(ConfigurationError) as refused:
        load_settings(_env_file=None)
    assert "GATEWAY_SMTP_USERS" in str(refused.value) and "correct-horse" not in str(refused.value)


def test_passwords_stay_out_of_the_settings_repr(make_settings) -> None:
    settings = make_settings(gateway_smtp_users=USERS)
    assert settings.smtp_users == {"app": "correct-horse", "cron": "battery-staple"}
    assert "correct-horse" not in repr(settings) and "correct-horse" not in str(settings.model_dump())


def test_a_certificate_without_its_key_is_a_settings_error() -> None:
    with pytest.raises(ConfigurationError) as refused:
        load_settings(_env_file=None, gateway_smtp_tls_cert="cert.pem")
    assert "GATEWAY_SMTP_TLS_KEY" in str(refused.value)


def test_auth_without_users_is_refused_as_not_offered(ingress_factory, tls_files, client_context) -> None:
    ingress = ingress_factory(mail_backend="memory", **tls_files)
    with ingress.client() as client:
        client.ehlo()
        assert not client.has_extn("auth")
        code, text = client.docmd("AUTH", f"PLAIN {_plain('app', 'correct-horse')}")
        assert code == 503 and text.startswith(b"5.5.1 ") and b"GATEWAY_SMTP_USERS" in text
        client.starttls(context=client_context)
        client.ehlo()
        assert not client.has_extn("auth")
        assert client.docmd("AUTH", "LOGIN")[0] == 503
        assert client.sendmail(SENDER, [RECIPIENT], message_bytes()) == {}  # the session goes on without it


def test_an_encrypted_tls_key_is_refused_at_start_up_without_asking_on_the_terminal(ca, tmp_path) -> None:
    # OpenSSL asks for an encrypted key's passphrase on the controlling terminal, so a server started from one
    # would wait there: the check runs with a terminal of its own, and must answer without reading from it.
    cert = ca.issue_cert("127.0.0.1")
    key = serialization.load_pem_private_key(cert.private_key_pem.bytes(), password=None)
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.BestAvailableEncryption(b"passphrase")))
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    script = ("from mail_gateway.ingress.security import server_tls_context\n"
              "from mail_gateway.settings import GatewaySettings\n"
              f"server_tls_context(GatewaySettings(_env_file=None, gateway_smtp_tls_cert={str(cert_path)!r}, "
              f"gateway_smtp_tls_key={str(key_path)!r}))\n")
    child, terminal = pty.fork()
    if child == 0:
        os.execv(sys.executable, [sys.executable, "-c", script])
    said = b""
    deadline = time.monotonic() + 60  # an outer bound: the child ends at once, or waits on the terminal for good
    while time.monotonic() < deadline:
        ready, _, _ = select.select([terminal], [], [], 1)
        try:
            chunk = os.read(terminal, 4096) if ready else None
        except OSError:  # the child ended and its side of the terminal closed (EIO): everything was read
            break
        if chunk == b"":
            break
        said += chunk or b""
    os.kill(child, signal.SIGKILL)  # one still waiting on the terminal; an ended one is only reaped
    os.waitpid(child, 0)
    os.close(terminal)
    assert b"pass phrase" not in said.lower() and b"ConfigurationError" in said, said[-500:]
    assert b"unencrypted" in said and b"GATEWAY_SMTP_TLS_KEY" in said
