"""flask-mailman's API on the gateway: ``send_mail``, ``send_mass_mail``, ``get_connection`` (named backends and
per-connection accounts), counts, ``fail_silently`` and ``mail.outbox``, always through the gateway's send path."""

from __future__ import annotations

import io
import logging
import smtplib
import threading

import pytest
from aiosmtpd.smtp import AuthResult
from flask import Flask
from flask_mailman import BadHeaderError, EmailMessage, EmailMultiAlternatives
from flask_mailman.backends import locmem, smtp
from smtp_server import HOST, FaultHandler, free_port

from mail_gateway import MailGateway
from mail_gateway.errors import ConfigurationError, InvalidMessageError
from mail_gateway.extension import connection_senders, settable
from mail_gateway.mail.result import QueuedResult


def app_with(**config) -> tuple[Flask, MailGateway]:
    app = Flask(__name__)
    app.config.update({"MAIL_DEFAULT_SENDER": "support@example.com", **config})
    mail = MailGateway(app)
    return app, mail


class Accounts:
    def __init__(self) -> None:
        self.logins: list[str] = []

    def __call__(self, server, session, envelope, mechanism, auth_data):
        self.logins.append(auth_data.login.decode())
        return AuthResult(success=auth_data.password == b"pw-" + auth_data.login, handled=False)


def test_send_mail_send_mass_mail_and_the_outbox() -> None:
    # Before: MailGateway had no send_mail, send_mass_mail, get_connection or outbox.
    app, mail = app_with(TESTING=True)
    with app.app_context():
        assert mail.send_mail("Hi", "Body", None, ["a@example.com"], html_message="<b>Body</b>") == 1
        assert mail.send_mass_mail([("One", "1", "x@example.com", ["b@example.com"]),
                                    ("Two", "2", ("Name", "y@example.com"), ["c@example.com", "d@example.com"])]) == 2
        first, second, third = mail.outbox
        assert (first.subject, first.to, first.from_email, first.body) == ("Hi", ["a@example.com"],
                                                                           "support@example.com", "Body")
        assert first.alternatives == [("<b>Body</b>", "text/html")]
        assert third.from_email == "Name <y@example.com>" and third.to == ["c@example.com", "d@example.com"]
        assert second.message()["Subject"] == "One"
        mail.outbox.clear()
        assert len(mail.outbox) == 0


def test_send_mail_and_send_mass_mail_of_a_mail_built_with_an_app_work_outside_an_app_context() -> None:
    # As mail.send does (docs/library.md, "Which app"). Before: flask-mailman's EmailMessage, which both build, looked
    # for the default sender on current_app and raised "Working outside of application context".
    app, mail = app_with(TESTING=True)
    assert mail.send_mail("Hi", "Body", None, ["a@example.com"]) == 1
    assert mail.send_mass_mail([("One", "1", None, ["b@example.com"])]) == 1
    with app.app_context():
        assert [(sent.subject, sent.from_email) for sent in mail.outbox] == [("Hi", "support@example.com"),
                                                                            ("One", "support@example.com")]


def test_email_message_send_returns_a_count_and_skips_messages_without_recipients() -> None:
    app, mail = app_with(TESTING=True)
    with app.app_context():
        assert EmailMultiAlternatives("Hi", "Body", to=["a@example.com"]).send() == 1
        assert EmailMessage("Nobody", "Body").send() == 0
        with mail.get_connection() as conn:
            messages = [EmailMessage("Hi", "x", to=["a@example.com"]), EmailMessage("Nobody", "x")]
            assert conn.send_messages(messages) == 1
        assert len(mail.outbox) == 2


def test_named_flask_mailman_backends_go_through_the_gateway(smtp_server, caplog) -> None:
    # Before: get_connection('locmem') handed the message to flask-mailman's own backend, past the gateway.
    app, mail = app_with(MAIL_SERVER=HOST, MAIL_PORT=smtp_server.port)
    with app.app_context(), caplog.at_level(logging.INFO, logger="mail_gateway.delivery"):
        for backend in ("locmem", "flask_mailman.backends.locmem", locmem.EmailBackend, "memory"):
            with mail.get_connection(backend) as conn:
                EmailMessage("Hi", "x", to=["a@example.com"], connection=conn).send()
        assert len(mail.outbox) == 4
    assert smtp_server.messages == []
    assert [r.delivery["backend"] for r in caplog.records] == ["memory"] * 4


def test_the_state_backend_name_is_honoured_at_run_time(capsys, caplog) -> None:
    app, mail = app_with(TESTING=True)
    app.extensions["mailman"].backend = "console"
    with app.app_context(), caplog.at_level(logging.INFO, logger="mail_gateway.delivery"):
        EmailMessage("Printed", "x", to=["a@example.com"]).send()
    assert "Subject: Printed" in capsys.readouterr().out
    [delivery] = caplog.records  # printed by the gateway's console backend, on its send path
    assert (delivery.delivery["backend"], delivery.delivery["via"]) == ("console", "library")


def test_a_console_connection_writes_to_the_stream_it_is_given() -> None:
    app, mail = app_with(TESTING=True)
    stream = io.StringIO()
    with app.app_context():
        mail.send_mail("Streamed", "x", None, ["a@example.com"], connection=mail.get_connection("console",
                                                                                                  stream=stream))
    written = stream.getvalue()
    assert written.startswith("From: ") and "Subject: Streamed" in written and "Content-Type: text/plain" in written


def test_per_connection_accounts_log_in_as_asked(smtp_server_factory) -> None:
    # Before: get_connection(username=...) raised TypeError.
    accounts = Accounts()
    server = smtp_server_factory(FaultHandler(), authenticator=accounts, auth_require_tls=False)
    app, mail = app_with(MAIL_SERVER=HOST, MAIL_PORT=server.port, MAIL_USERNAME="app", MAIL_PASSWORD="pw-app")
    with app.app_context():
        mail.send_mail("As app", "x", None, ["a@example.com"])
        mail.send_mail("As billing", "x", None, ["a@example.com"], auth_user="billing", auth_password="pw-billing")
        with mail.get_connection(username="news", password="pw-news") as conn:
            conn.send_messages([EmailMessage("As news", "x", to=["a@example.com"]) for _ in range(2)])
    assert accounts.logins == ["app", "billing", "news"]  # one login per connection, not per message
    assert len(server.messages) == 4
    MailGateway.state(app).sender.close()


def test_per_connection_options_are_validated_naming_the_option() -> None:
    app, mail = app_with(TESTING=True)
    with app.app_context():
        with pytest.raises(ConfigurationError, match=r"port=.*MAIL_PORT must be at most 65535.*port number"):
            mail.get_connection("smtp", port=70000)
        with pytest.raises(ConfigurationError, match="set only one"):
            mail.get_connection("smtp", use_tls=True, use_ssl=True)
        with pytest.raises(ConfigurationError, match="carrier-pigeon"):
            mail.get_connection("carrier-pigeon")


def test_fail_silently_returns_the_count_and_logs_the_failure(smtp_server_factory, caplog) -> None:
    # Before: fail_silently=True raised TypeError even when delivery would succeed.
    server = smtp_server_factory(FaultHandler(rcpt_replies={"gone@example.com": "550 5.1.1 no such user"}))
    app, mail = app_with(MAIL_SERVER=HOST, MAIL_PORT=server.port)
    with app.app_context(), caplog.at_level(logging.WARNING, logger="mail_gateway.delivery"):
        good = EmailMessage("Hi", "x", to=["a@example.com"])
        assert good.send(fail_silently=True) == 1
        bad = EmailMessage("Hi", "x", to=["gone@example.com"])
        assert bad.send(fail_silently=True) == 0
        assert mail.send_mass_mail([("A", "x", None, ["a@example.com"]), ("B", "x", None, ["gone@example.com"]),
                                    ("C", "x", None, ["a@example.com"])], fail_silently=True) == 2
    assert good.gateway_status.accepted and bad.gateway_status is None
    # The first refusal (550 5.1.1) put the address on the suppression list: the second never reached the upstream.
    assert [r.delivery["outcome"] for r in caplog.records] == ["refused", "suppressed"]
    assert len(server.messages) == 3
    MailGateway.state(app).sender.close()


def test_without_fail_silently_the_first_failure_stops_the_rest(smtp_server_factory) -> None:
    server = smtp_server_factory(FaultHandler(rcpt_replies={"gone@example.com": "550 5.1.1 no such user"}))
    app, mail = app_with(MAIL_SERVER=HOST, MAIL_PORT=server.port)
    with app.app_context(), pytest.raises(smtplib.SMTPRecipientsRefused, match="refused every recipient"):
        mail.send_mass_mail([("A", "x", None, ["a@example.com"]), ("B", "x", None, ["gone@example.com"]),
                             ("C", "x", None, ["a@example.com"])])
    assert [b"Subject: A" in m.data for m in server.messages] == [True]
    MailGateway.state(app).sender.close()


def test_reusing_an_email_message_sends_two_messages_and_leaves_it_unchanged() -> None:
    app, mail = app_with(TESTING=True)
    headers = {"X-Campaign": "spring"}
    with app.app_context():
        message = EmailMessage("Hi", "x", to=["a@example.com"], headers=headers)
        message.send()
        message.send()
        first, second = mail.outbox
    assert first.message_id != second.message_id and first.message_id and second.message_id
    assert message.extra_headers is headers and headers == {"X-Campaign": "spring"}
    assert second.message_id == message.gateway_status.message_id


def test_setting_a_state_attribute_changes_the_connections_made_after_it(smtp_server_factory) -> None:
    # Before: AttributeError "port is fixed once MailGateway(app) has started".
    first, second = (smtp_server_factory(FaultHandler(), authenticator=Accounts(), auth_require_tls=False)
                     for _ in range(2))
    app, mail = app_with(MAIL_SERVER=HOST, MAIL_PORT=first.port, MAIL_USERNAME="app", MAIL_PASSWORD="pw-app")
    state = app.extensions["mailman"]
    assert state is app.extensions["mail"] and state.password == "pw-app"  # what the app set, for its own code
    with app.app_context():
        mail.send_mail("One", "x", None, ["a@example.com"])
        state.port = second.port
        mail.port = second.port  # the extension object forwards it, as flask-mailman's Mail does
        mail.send_mail("Two", "x", None, ["a@example.com"])
        assert smtp.EmailBackend().port == second.port  # flask-mailman's own classes read the new value
    assert [len(first.messages), len(second.messages)] == [1, 1]
    with pytest.raises(ConfigurationError, match="mail.port.*MAIL_PORT must be at most 65535"):
        state.port = 70000
    assert state.port == second.port
    state.default_sender = "other@example.com"  # read when a message is built, as in flask-mailman
    with app.app_context():
        assert EmailMessage("Hi", "x", to=["a@example.com"]).from_email == "other@example.com"
    MailGateway.state(app).sender.close()


def test_a_setting_changed_while_another_thread_builds_a_named_backend_reaches_that_backend(
        smtp_server_factory, monkeypatch) -> None:
    # get_connection("smtp") builds the app's kept SMTP sender from the settings it read first; a port set while
    # it was being built found no sender to rebuild yet, and the one built from the old port was kept for good.
    first, second = smtp_server_factory(), smtp_server_factory()
    app, mail = app_with(TESTING=True, MAIL_SERVER=HOST, MAIL_PORT=first.port)
    building, changed = threading.Event(), threading.Event()
    build_sender = connection_senders.build_sender

    def paused_build(*args, **kwargs):
        if not building.is_set():  # the first build, on the other thread: the port changes meanwhile
            building.set()
            assert changed.wait(30)
        return build_sender(*args, **kwargs)

    monkeypatch.setattr(connection_senders, "build_sender", paused_build)

    def connect() -> None:
        with app.app_context():
            mail.get_connection("smtp")

    other = threading.Thread(target=connect)
    other.start()
    assert building.wait(30)
    app.extensions["mailman"].port = second.port
    changed.set()
    other.join(30)
    with app.app_context():
        mail.send_mail("After", "x", None, ["a@example.com"], connection=mail.get_connection("smtp"))
    assert [len(first.messages), len(second.messages)] == [0, 1]
    for sender in MailGateway.state(app).alternates.values():
        sender.close()


def test_two_settings_assigned_at_once_from_two_threads_are_both_kept(monkeypatch) -> None:
    # Each assignment loads the settings again from those it read: the one that read first and swapped last
    # undid the other's change.
    app, mail = app_with(TESTING=True, MAIL_SERVER=HOST, MAIL_PORT=2525)
    state = app.extensions["mailman"]
    read, other_done = threading.Event(), threading.Event()
    load_settings = settable.load_settings

    def paused_load(**values):
        if not read.is_set():  # the first assignment has read the settings; the other one runs now
            read.set()
            assert other_done.wait(30)
        return load_settings(**values)

    monkeypatch.setattr(settable, "load_settings", paused_load)
    first = threading.Thread(target=lambda: setattr(state, "port", 2526))
    first.start()
    assert read.wait(30)
    state.timeout = 7
    other_done.set()
    first.join(30)
    settings = MailGateway.state(app).settings
    assert (settings.mail_port, settings.mail_timeout) == (2526, 7)
    assert (state.port, state.timeout) == (2526, 7)


def test_a_queued_app_refuses_to_change_the_backend_its_workers_use(tmp_path) -> None:
    app, _ = app_with(MAIL_SERVER=HOST, GATEWAY_DELIVERY="queued",
                      GATEWAY_STORE_URL=f"sqlite:///{tmp_path}/store.sqlite3")
    with pytest.raises(ConfigurationError, match="delivery workers.*MAIL_PORT"):
        app.extensions["mailman"].port = 2525
    MailGateway.state(app).store.close()


def test_the_outbox_is_a_list_as_in_flask_mailman() -> None:
    # Before: AttributeError: 'SentMail' object has no attribute 'append'.
    app, mail = app_with(TESTING=True)
    with app.app_context():
        mail.send_mail("One", "x", None, ["a@example.com"])
        mail.outbox.append(EmailMessage("Kept by the test", "x", to=["b@example.com"]))
        assert [m.subject for m in mail.outbox] == ["One", "Kept by the test"]
        assert [m.subject for m in mail.outbox[-1:]] == ["Kept by the test"]
        del mail.outbox[:]
        assert len(mail.outbox) == 0


def test_connections_have_a_timeout_and_ignore_unknown_options_with_a_warning(smtp_server) -> None:
    # Before: 'Connection' object has no attribute 'timeout'; get_connection(foo=...) raised TypeError.
    app, mail = app_with(MAIL_SERVER=HOST, MAIL_PORT=smtp_server.port, MAIL_TIMEOUT=7)
    with app.app_context():
        assert mail.get_connection().timeout == 7 and mail.get_connection(timeout=3).timeout == 3
        with pytest.warns(UserWarning, match="foo"):
            connection = mail.get_connection(foo="bar")
        assert connection.send_messages([EmailMessage("Hi", "x", to=["a@example.com"])]) == 1
    MailGateway.state(app).sender.close()


def test_an_unknown_backend_raises_what_flask_mailman_raises() -> None:
    # Before: ConfigurationError, which flask-mailman's callers (catching RuntimeError) did not expect.
    app, mail = app_with(TESTING=True)
    app.extensions["mailman"].backend = "unknown"
    with app.app_context(), pytest.raises(RuntimeError, match="available built-in mail backends") as raised:
        EmailMessage("Hi", "x", to=["a@example.com"]).send()
    assert isinstance(raised.value, ConfigurationError) and "smtp, console, file and memory" in str(raised.value)


def test_the_outbox_says_why_when_the_backend_keeps_nothing(smtp_server) -> None:
    app, mail = app_with(MAIL_SERVER=HOST, MAIL_PORT=smtp_server.port)
    with app.app_context(), pytest.raises(RuntimeError, match="TESTING=True or MAIL_BACKEND=memory"):
        mail.outbox  # noqa: B018


def test_registering_beside_flask_mail_or_flask_mailman_is_refused() -> None:
    import flask_mail
    import flask_mailman

    for other in (flask_mail.Mail, flask_mailman.Mail):
        app = Flask(__name__)
        other(app)
        with pytest.raises(RuntimeError, match="remove Mail"):
            MailGateway(app)


def test_non_ascii_subjects_names_and_domains_go_out_encoded() -> None:
    app, mail = app_with(TESTING=True)
    with app.app_context():
        assert mail.send_mail("Chère maman", "Je t'aime très fort", '"Firstname Sürname" <from@öäü.com>',
                              ["to@öäü.com"]) == 1
        [sent] = mail.outbox
    raw = sent.message()
    assert raw["Subject"] == "=?utf-8?q?Ch=C3=A8re_maman?=" and sent.subject == "Chère maman"
    assert raw["To"] == "to@xn--4ca9at.com" and sent.recipients() == ["to@xn--4ca9at.com"]
    assert sent.from_email == "Firstname Sürname <from@xn--4ca9at.com>"
    assert raw.get_payload(decode=True).decode() == "Je t'aime très fort"


def test_a_queued_app_hands_out_connections_to_a_named_backend(tmp_path) -> None:
    # Before: every get_connection(...) on a queued app raised "MAIL_RETRY_ATTEMPTS does not apply to queued
    # delivery", the connection's settings counting each default of the app's as set.
    app, mail = app_with(GATEWAY_DELIVERY="queued", GATEWAY_STORE_URL=f"sqlite:///{tmp_path}/store.sqlite3")
    with app.app_context(), mail.get_connection("memory") as conn:
        assert conn.send_messages([EmailMessage("Hi", "x", to=["a@example.com"])]) == 1
    MailGateway.state(app).store.close()


def test_a_message_without_a_sender_names_the_setting_to_set() -> None:
    # Before: "the message has no sender", without saying where a sender comes from.
    app, mail = app_with(TESTING=True)
    app.extensions["mailman"].default_sender = None
    with app.app_context(), pytest.raises(InvalidMessageError, match="MAIL_DEFAULT_SENDER.*from_email") as raised:
        EmailMessage("Hi", "x", to=["a@example.com"]).send()
    assert raised.value.field == "from" and len(mail.outbox) == 0
    app.extensions["mailman"].default_sender = "support@example.com"
    with app.app_context():
        assert EmailMessage("Hi", "x", to=["a@example.com"]).send() == 1
        assert mail.outbox[0].from_email == "support@example.com"


def test_the_client_certificate_pair_may_be_set_one_half_at_a_time(tmp_path) -> None:
    # Before: ConfigurationError "MAIL_SSL_KEYFILE is set without MAIL_SSL_CERTFILE" at the first assignment.
    app, mail = app_with(TESTING=True)
    state = app.extensions["mailman"]
    state.ssl_keyfile = str(tmp_path / "client.key")
    assert state.ssl_keyfile == str(tmp_path / "client.key") and state.ssl_certfile is None
    with app.app_context(), pytest.raises(ConfigurationError, match="MAIL_SSL_KEYFILE is set without MAIL_SSL_CERT"):
        mail.send_mail("Half", "x", None, ["a@example.com"])  # a half-set pair is refused where it would be used
    state.ssl_certfile = str(tmp_path / "client.pem")
    assert MailGateway.state(app).settings.mail_ssl_keyfile == tmp_path / "client.key"
    with app.app_context():
        assert mail.send_mail("Whole", "x", None, ["a@example.com"]) == 1
    assert [m.subject for m in mail.outbox] == ["Whole"]


def test_the_data_command_is_spelt_as_smtplib_spells_it(smtp_server, caplog) -> None:
    # Before: "DATA", so a test watching smtplib's commands for its "data" never found the message.
    app, mail = app_with(MAIL_SERVER=HOST, MAIL_PORT=smtp_server.port)
    with app.app_context(), caplog.at_level(logging.INFO, logger="mail.log"):
        assert mail.send_mail("Hi", "x", None, ["a@example.com"]) == 1
    read = [record.args[1] for record in caplog.records if record.name == "mail.log" and " >> " in record.msg]
    assert b"data" in read and b"DATA" not in read  # as aiosmtpd read the command lines
    assert len(smtp_server.messages) == 1
    MailGateway.state(app).sender.close()


def test_a_connection_timeout_is_what_the_application_set() -> None:
    # Before: 10.0 when MAIL_TIMEOUT was unset, where flask-mailman's connections say None.
    app, mail = app_with(MAIL_SERVER=HOST)
    with app.app_context():
        assert mail.get_connection().timeout is None and app.extensions["mailman"].timeout is None
        assert mail.get_connection(timeout=4).timeout == 4
        assert MailGateway.state(app).sender.backend.settings.mail_timeout == 10  # what bounds each step meanwhile
        app.extensions["mailman"].timeout = 5
        assert mail.get_connection().timeout == 5 and app.extensions["mailman"].timeout == 5
        app.extensions["mailman"].timeout = None  # unset again: the gateway's bound applies
        assert mail.get_connection().timeout is None
        assert MailGateway.state(app).sender.backend.settings.mail_timeout == 10
    MailGateway.state(app).sender.close()


def test_open_dials_and_fail_silently_silences_its_connection_error(caplog) -> None:
    # Before: open() did not dial, so an unreachable server raised only at the first message.
    app, mail = app_with(MAIL_SERVER=HOST, MAIL_PORT=free_port(), MAIL_RETRY_ATTEMPTS=1)
    with app.app_context():
        connection = mail.get_connection()
        with pytest.raises(ConnectionError) as raised:
            connection.open()
        assert isinstance(raised.value, smtplib.SMTPConnectError) and "could not connect" in str(raised.value)
        with caplog.at_level(logging.WARNING, logger="mail_gateway"):
            assert mail.get_connection(fail_silently=True).open() is None
        assert any("could not connect" in record.getMessage() for record in caplog.records)
        with pytest.raises(ConnectionError), mail.get_connection():
            pass
    MailGateway.state(app).sender.close()


def test_open_holds_a_connection_the_messages_then_use(smtp_server) -> None:
    app, mail = app_with(MAIL_SERVER=HOST, MAIL_PORT=smtp_server.port)
    with app.app_context():
        connection = mail.get_connection()
        assert connection.open() is True and connection.open() is False
        assert smtp_server.handler.connections == 1  # dialled by open(), before any message
        smtp_server.drop_connections()  # the held connection is found dead and replaced, not used
        assert connection.send_messages([EmailMessage(s, "x", to=["a@example.com"]) for s in ("A", "B")]) == 2
        connection.close()
    assert [m.mail_from for m in smtp_server.messages] == ["support@example.com"] * 2
    assert smtp_server.handler.connections == 2
    MailGateway.state(app).sender.close()


def test_the_memory_backend_keeps_any_address_when_the_setting_says_so(smtp_server) -> None:
    # Before: refused ("'tester' is not one email address", "the message has no sender") whatever the settings.
    app, mail = app_with(TESTING=True, MAIL_MEMORY_KEEPS_ANY_ADDRESS=True)
    app.extensions["mailman"].default_sender = None
    with app.app_context():
        assert mail.send_mail("Subject", "Content", "tester", ["little bird"]) == 1
        assert EmailMessage("No sender", "x", to=["a@example.com"]).send() == 1
        first, second = mail.outbox
        assert (first.message()["From"], first.message()["To"], first.recipients()) == ("tester", "little bird",
                                                                                       ["little bird"])
        assert second.from_email is None and second.message()["From"] is None and second.subject == "No sender"
        with pytest.raises(BadHeaderError):  # only addresses are let through
            EmailMessage("Hi\nBcc: x@example.com", "x", "tester", ["little bird"]).send()
        with pytest.raises(InvalidMessageError, match="'tester' is not one email address"):
            mail.send_mail("By SMTP", "x", "tester", ["a@example.com"],
                           connection=mail.get_connection("smtp", host=HOST, port=smtp_server.port))
    assert len(mail.outbox) == 2 and smtp_server.messages == []


def test_without_the_setting_the_memory_backend_refuses_what_no_server_takes() -> None:
    app, mail = app_with(TESTING=True)
    with app.app_context(), pytest.raises(InvalidMessageError, match="'little bird' is not one email address"):
        mail.send_mail("Subject", "Content", "tester", ["little bird"])
    assert len(mail.outbox) == 0


def test_every_connection_of_the_memory_backend_keeps_its_mail_in_the_one_outbox() -> None:
    # Before: mail sent through get_connection(username=...) fired email_dispatched but never reached mail.outbox.
    from flask_mail import Message as FlaskMailMessage

    app, mail = app_with(TESTING=True)
    with app.app_context(), mail.record_messages() as dispatched:
        mail.send_mail("Auth", "x", None, ["a@example.com"], auth_user="billing", auth_password="pw-billing")
        with mail.get_connection(username="news", password="pw-news") as conn:
            EmailMessage("Account", "x", to=["a@example.com"], connection=conn).send()
        mail.send_mail("Server", "x", None, ["a@example.com"],
                       connection=mail.get_connection("locmem", host=HOST, port=free_port(), timeout=3))
        with mail.connect() as conn:
            conn.send(FlaskMailMessage("Flask-Mail", recipients=["a@example.com"]))
    assert [m.subject for m in mail.outbox] == ["Auth", "Account", "Server", "Flask-Mail"]
    assert [m.subject for m in dispatched] == ["Auth", "Account", "Server", "Flask-Mail"]  # email_dispatched


def test_a_named_memory_connection_with_options_keeps_its_mail_in_the_outbox(smtp_server) -> None:
    # Before: get_connection('memory', username=...) on an SMTP app kept its message where mail.outbox never reads.
    app, mail = app_with(MAIL_SERVER=HOST, MAIL_PORT=smtp_server.port)
    with app.app_context():
        mail.send_mail("Named", "x", None, ["a@example.com"], connection=mail.get_connection("memory"))
        mail.send_mail("With options", "x", None, ["a@example.com"],
                       connection=mail.get_connection("locmem", username="news", password="pw-news"))
        assert [m.subject for m in mail.outbox] == ["Named", "With options"]
    assert smtp_server.messages == []


def test_a_queued_app_sends_through_the_default_connection_and_reports_the_queued_result(tmp_path) -> None:
    # Before: AssertionError in the extension's settling of the outcome, which expected a direct SendResult.
    app, mail = app_with(GATEWAY_DELIVERY="queued", GATEWAY_STORE_URL=f"sqlite:///{tmp_path}/store.sqlite3")
    with app.app_context():
        message = EmailMessage("Queued", "x", to=["a@example.com"])
        assert message.send() == 1
        assert mail.send_mail("Also queued", "y", None, ["b@example.com"]) == 1
    status = message.gateway_status
    assert isinstance(status, QueuedResult) and status.status == "queued" and status.recipients == ("a@example.com",)
    MailGateway.state(app).store.close()


def test_an_unknown_encoding_or_a_body_not_in_it_is_refused_naming_the_attribute() -> None:
    # Before: a LookupError from the composer, and a UnicodeDecodeError from reading the body.
    app, mail = app_with(TESTING=True)
    with app.app_context():
        msg = EmailMessage("Hi", "x", to=["to@example.com"])
        msg.encoding = "bogus"
        with pytest.raises(InvalidMessageError, match="'bogus' is not the name of a character set") as caught:
            msg.send()
        assert caught.value.field == "encoding"
        msg = EmailMultiAlternatives("Hi", b"caf\xe9", to=["to@example.com"], alternatives=[(b"\xff", "text/html")])
        msg.encoding = "iso-8859-1"
        msg.send()
        assert mail.outbox[0].body == "café" and mail.outbox[0].alternatives == [("ÿ", "text/html")]
        msg.encoding = "utf-8"
        with pytest.raises(InvalidMessageError, match="not utf-8") as caught:
            msg.send()
        assert caught.value.field == "body" and len(mail.outbox) == 1


def test_the_outbox_shows_a_calendar_alternative_as_an_alternative_not_an_attachment() -> None:
    # Before: alternatives was [] and attachments [(None, b'BEGIN:VCALENDAR...', 'text/calendar')], where
    # flask-mailman's outbox shows the alternative as it was attached.
    app, mail = app_with(TESTING=True)
    with app.app_context():
        message = EmailMultiAlternatives("Meeting", "Text", to=["a@example.com"])
        message.attach_alternative("<p>Meeting</p>", "text/html")
        message.attach_alternative("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", "text/calendar; method=REQUEST")
        message.attach("agenda.pdf", b"%PDF-1.4", "application/pdf")
        forwarded = EmailMultiAlternatives("Earlier", "Text", to=["b@example.com"])
        forwarded.attach_alternative("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", "text/calendar")
        message.attach(None, forwarded, "message/rfc822")
        message.send()
        [sent] = mail.outbox
        assert sent.alternatives == [("<p>Meeting</p>", "text/html"),  # the forwarded message's are its own
                                     ("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", "text/calendar; method=REQUEST")]
        pdf, attached = sent.attachments
        assert pdf == ("agenda.pdf", b"%PDF-1.4", "application/pdf") and attached[2] == "message/rfc822"


def test_the_outbox_shows_a_text_attachment_as_text(tmp_path) -> None:
    # Before: every attachment's content was bytes (b'hello'), where flask-mailman's outbox holds a text
    # attachment as str, decoded as attach() and attach_file() decode it, so tests comparing it to text failed.
    notes = tmp_path / "notes.txt"
    notes.write_bytes("Grüße".encode())
    app, mail = app_with(TESTING=True)
    with app.app_context():
        message = EmailMessage("Files", "Text", to=["a@example.com"])
        message.attach("a.txt", "hello", "text/plain")
        message.attach("b.csv", b"x,y", "text/csv")
        message.attach_file(str(notes))
        message.attach("c.bin", b"\x00\x01", "application/octet-stream")
        message.send()
        latin = EmailMessage("Latin", "Text", to=["a@example.com"])
        latin.encoding = "iso-8859-1"
        latin.attach("l.txt", "café", "text/plain")
        latin.send()
        assert [a for m in mail.outbox for a in m.attachments] == [
            ("a.txt", "hello", "text/plain"), ("b.csv", "x,y", "text/csv"), ("notes.txt", "Grüße", "text/plain"),
            ("c.bin", b"\x00\x01", "application/octet-stream"), ("l.txt", "café", "text/plain")]


def test_assigning_a_list_to_the_outbox_empties_it_as_flask_mailmans_fixtures_do() -> None:
    # Before: AttributeError: property 'outbox' of 'AppMail' object has no setter, for the line with which
    # fixtures written for flask-mailman empty its locmem outbox.
    app, mail = app_with(TESTING=True)
    with app.app_context():
        mail.send_mail("Before", "x", None, ["a@example.com"])
        app.extensions["mailman"].outbox = []
        outbox = app.extensions["mailman"].outbox
        mail.send_mail("After", "x", None, ["a@example.com"])
        assert [m.subject for m in outbox] == ["After"]
        mail.outbox = [EmailMessage("Kept by the test", "x", to=["b@example.com"])]
        assert [m.subject for m in mail.outbox] == ["Kept by the test"]
        mail.outbox = mail.outbox  # what it holds, given back
        assert [m.subject for m in outbox] == ["Kept by the test"]


def test_a_text_alternative_that_repeats_the_body_is_written_once() -> None:
    # Before: InvalidMessageError (alternatives[0].content_type: text/plain is the text field), for the common
    # EmailMultiAlternatives(subject, text, ...) with attach_alternative(text, "text/plain") that flask-mailman sends.
    app, mail = app_with(TESTING=True)
    with app.app_context():
        message = EmailMultiAlternatives("Hi", "Plain", to=["a@example.com"])
        message.attach_alternative("Plain", "text/plain")
        message.attach_alternative("<b>Hi</b>", "text/html")
        assert message.send() == 1
        [sent] = mail.outbox
        assert (sent.body, sent.alternatives) == ("Plain", [("<b>Hi</b>", "text/html")])
        assert [part.get_content_type() for part in sent.message().walk()] == ["multipart/alternative",
                                                                              "text/plain", "text/html"]
        different = EmailMultiAlternatives("Hi", "<p>Hi</p>", to=["a@example.com"])
        different.attach_alternative("Plain", "text/plain")  # two texts: which one to send is not guessed
        with pytest.raises(InvalidMessageError, match="text/plain"):
            different.send()


def test_a_sender_at_localhost_goes_out_as_flask_mailman_sends_it(smtp_server) -> None:
    # Flask-Security-Too sends from no-reply@localhost unless MAIL_DEFAULT_SENDER is set; refused before.
    app, mail = app_with(MAIL_SERVER=HOST, MAIL_PORT=smtp_server.port)
    with app.app_context():
        assert EmailMultiAlternatives("Reset", "x", "no-reply@localhost", ["user@corp.local"]).send() == 1
    [received] = smtp_server.messages
    assert (received.mail_from, received.rcpt_tos) == ("no-reply@localhost", ["user@corp.local"])
    MailGateway.state(app).sender.close()
