"""The ``mail_outbox`` fixture as a project using the gateway sees it: run in pytest's own ``pytester``."""

from __future__ import annotations

import pytest
from smtp_server import free_port

pytest_plugins = ["pytester"]

APP_MODULE = '''
from flask import Flask
from flask_mailman import EmailMessage

from mail_gateway import MailGateway

app = Flask(__name__)
MailGateway(app)


@app.post("/signup/<name>")
def signup(name):
    EmailMessage("Welcome", f"Hello {name}", "app@example.com", [f"{name}@example.com"]).send()
    return "ok"
'''


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(myapp=APP_MODULE)
    pytester.syspathinsert()
    return pytester


def test_the_fixture_comes_from_the_installed_entry_point(project) -> None:
    project.makepyfile("def test_it(mail_outbox):\n    assert len(mail_outbox) == 0\n")
    project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    result = project.runpytest("-p", "no:mail_gateway")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'mail_outbox' not found*"])


def test_it_forces_the_memory_backend_whatever_the_settings_say(project) -> None:
    closed_port = free_port()  # nothing listens here: a real SMTP attempt would fail the test
    project.makepyfile(f"""
        from flask_mailman import EmailMessage
        from mail_gateway import MailGateway, create_app
        from mail_gateway.settings import GatewaySettings

        def test_production_smtp_settings(mail_outbox):
            settings = GatewaySettings(_env_file=None, gateway_env="production", mail_backend="smtp",
                                       mail_server="127.0.0.1", mail_port={closed_port},
                                       gateway_allow_anonymous=True)
            app = create_app(settings)
            response = app.test_client().post("/v1/messages", json={{
                "from": "app@example.com", "to": ["ann@example.com"], "subject": "Hi", "text": "Hello"}})
            assert response.status_code == 202 and response.json["backend"] == "memory"
            assert [m.subject for m in mail_outbox] == ["Hi"]

        def test_an_app_built_from_the_environment(mail_outbox, monkeypatch):
            monkeypatch.setenv("GATEWAY_ENV", "development")
            app = create_app()
            with app.app_context():
                EmailMessage("Env", "body", "app@example.com", ["bob@example.com"]).send()
            mail_outbox.assert_sent(to="bob@example.com", subject="Env")
    """)
    project.runpytest().assert_outcomes(passed=2)


def test_it_is_list_like_and_starts_empty_in_every_test(project) -> None:
    project.makepyfile("""
        import pytest
        from mail_gateway import create_app

        def send(n):
            client = create_app().test_client()
            for i in range(n):
                client.post("/v1/messages", json={"from": "app@example.com", "to": [f"u{i}@example.com"],
                                                  "subject": f"n{i}", "text": "x"})

        @pytest.mark.parametrize("n", [3, 2])
        def test_each_test_sees_only_its_own_mail(mail_outbox, n):
            assert len(mail_outbox) == 0
            send(n)
            assert len(mail_outbox) == n
            assert [m.subject for m in mail_outbox] == [f"n{i}" for i in range(n)]
            assert mail_outbox[0].to == ["u0@example.com"] and mail_outbox[-1].subject == f"n{n - 1}"
            assert [m.subject for m in mail_outbox[1:]] == [f"n{i}" for i in range(1, n)]
            mail_outbox.clear()
            assert len(mail_outbox) == 0 and list(mail_outbox) == []
    """)
    project.runpytest().assert_outcomes(passed=2)


def test_assert_sent_matches_and_returns_the_message(project) -> None:
    project.makepyfile("""
        import re
        from flask_mailman import EmailMultiAlternatives
        from mail_gateway import create_app

        def test_matches(mail_outbox):
            app = create_app()
            with app.app_context():
                message = EmailMultiAlternatives("Invoice 42", "Total: 10 EUR", "Shop <shop@example.com>",
                                                 ["Ann <ANN@example.com>"], cc=["acct@example.com"],
                                                 bcc=["audit@example.com"])
                message.attach_alternative("<p>Total</p>", "text/html")
                message.attach("invoice.pdf", b"%PDF", "application/pdf")
                message.send()
            sent = mail_outbox.assert_sent(to="ann@example.com", subject="Invoice 42")
            assert sent.text.strip() == "Total: 10 EUR" and sent.attachments[0].filename == "invoice.pdf"
            mail_outbox.assert_sent(subject=re.compile(r"Invoice \\d+"), from_="shop@example.com", count=1)
            mail_outbox.assert_sent(cc="acct@example.com", bcc="audit@example.com", text_contains="10 EUR",
                                    html_contains="<p>Total</p>")

        def test_a_subject_string_matches_exactly_and_subject_contains_a_part(mail_outbox):
            app = create_app()
            with app.app_context():
                EmailMultiAlternatives("Your invoice 42", "x", "shop@example.com", ["ann@example.com"]).send()
            assert mail_outbox.find(subject="invoice 42") == [] and mail_outbox.find(subject="Your invoice") == []
            sent = mail_outbox.assert_sent(subject_contains="invoice 4", count=1)
            assert sent.subject == "Your invoice 42" and mail_outbox.find(subject_contains="Invoice") == []
    """)
    project.runpytest().assert_outcomes(passed=2)


def test_a_failed_assertion_lists_what_was_sent_instead(project) -> None:
    project.makepyfile("""
        from mail_gateway import create_app

        def test_wrong_subject(mail_outbox):
            client = create_app().test_client()
            for to, subject in [("ann@example.com", "Welcome"), ("bob@example.com", "Reset your password")]:
                client.post("/v1/messages", json={"from": "app@example.com", "to": [to], "subject": subject,
                                                  "text": "x"})
            mail_outbox.assert_sent(to="bob@example.com", subject="Welcome")

        def test_nothing_expected(mail_outbox):
            create_app().test_client().post("/v1/messages", json={
                "from": "app@example.com", "to": ["eve@example.com"], "subject": "Oops", "text": "x"})
            mail_outbox.assert_nothing_sent()

        def test_nothing_sent(mail_outbox):
            mail_outbox.assert_sent(to="ann@example.com")
    """)
    result = project.runpytest()
    result.assert_outcomes(failed=3)
    output = result.stdout.str()
    assert ("AssertionError: expected a message matching to='bob@example.com', subject='Welcome'; found 0.\n"
            "E           2 message(s) were sent:\n"
            "E             1. to=['ann@example.com'] subject='Welcome' from='app@example.com'\n"
            "E             2. to=['bob@example.com'] subject='Reset your password' from='app@example.com'\n") in output
    assert ("AssertionError: expected no mail to be sent.\n"
            "E           1 message(s) were sent:\n"
            "E             1. to=['eve@example.com'] subject='Oops' from='app@example.com'\n") in output
    assert ("AssertionError: expected a message matching to='ann@example.com'; found 0.\n"
            "E           No message was sent.\n") in output


def test_capture_still_works_on_an_app_built_before_the_test(project) -> None:
    project.makepyfile("""
        from myapp import app

        def test_signup(mail_outbox, capsys):
            mail_outbox.capture(app)
            assert app.test_client().post("/signup/ann").status_code == 200
            mail_outbox.assert_sent(to="ann@example.com", subject="Welcome", text_contains="Hello ann")
            assert "Subject: Welcome" not in capsys.readouterr().out  # not printed by the console backend
    """)
    project.runpytest().assert_outcomes(passed=1)


SMTP_APPS = '''
from flask import Flask
from flask_mailman import EmailMessage

from mail_gateway import Mail, MailGateway, Message, create_app
from mail_gateway.settings import GatewaySettings

SMTP = {{"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": {port}}}

# Built at import, before any fixture runs: the usual layout of a Flask project.
app = Flask(__name__)
app.config.update(SMTP)
mail = Mail(app)


@app.post("/signup/<name>")
def signup(name):
    mail.send(Message("Welcome", [f"{{name}}@example.com"], f"Hello {{name}}", sender="app@example.com"))
    return "ok"


later = MailGateway()
other = Flask("other")
other.config.update(SMTP)
later.init_app(other)

api = create_app(GatewaySettings(_env_file=None, gateway_env="production", mail_backend="smtp",
                                 mail_server="127.0.0.1", mail_port={port}, gateway_allow_anonymous=True))
'''


def test_no_app_delivers_while_the_fixture_is_active_however_it_was_built(pytester, smtp_server) -> None:
    pytester.makepyfile(smtp_apps=SMTP_APPS.format(port=smtp_server.port))
    pytester.syspathinsert()
    pytester.makepyfile("""
        from flask_mailman import EmailMessage
        from smtp_apps import api, app, later, mail, other

        def test_module_level_app(mail_outbox):
            assert app.test_client().post("/signup/ann").status_code == 200
            mail_outbox.assert_sent(to="ann@example.com", subject="Welcome", count=1)

        def test_several_apps_and_every_api(mail_outbox):
            with other.app_context():
                EmailMessage("Mailman", "x", "app@example.com", ["bob@example.com"]).send()
                later.get_connection(backend="smtp").send_messages(
                    [EmailMessage("Named", "x", "app@example.com", ["eve@example.com"])])
            with app.app_context():
                mail.send_message(subject="Direct", recipients=["dan@example.com"], sender="app@example.com")
            response = api.test_client().post("/v1/messages", json={
                "from": "app@example.com", "to": ["fay@example.com"], "subject": "Api", "text": "x"})
            assert response.status_code == 202 and response.json["backend"] == "memory"
            assert [m.subject for m in mail_outbox] == ["Mailman", "Named", "Direct", "Api"]

        def test_mail_still_goes_out_once_the_fixture_is_gone():
            assert app.test_client().post("/signup/gus").status_code == 200
            mail.state(app).sender.close()
    """)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=3)
    assert [m.rcpt_tos for m in smtp_server.messages] == [["gus@example.com"]]


def test_wait_answers_when_another_thread_sends_and_links_and_codes_are_listed(project) -> None:
    project.makepyfile('''
        import threading
        import time

        import pytest
        from flask_mailman import EmailMultiAlternatives

        from myapp import app

        def send_once_waited_for(outbox):
            deadline = time.monotonic() + 30
            while outbox.backend.keeping.waiting() == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            with app.app_context():
                message = EmailMultiAlternatives("Your sign-up code", "Your code is 482913.\\nConfirm: "
                                                 "https://app.example/confirm?t=abc", "app@example.com",
                                                 ["ann@example.com"])
                message.attach_alternative('<a href="https://app.example/confirm?t=abc">Confirm</a>', "text/html")
                message.send()

        def test_sign_up(mail_outbox):
            sender = threading.Thread(target=send_once_waited_for, args=(mail_outbox,))
            sender.start()
            message = mail_outbox.wait("to:ann@example.com subject:code", timeout=30)
            sender.join()
            assert message.codes == ["482913"] and mail_outbox.codes(message) == ["482913"]
            assert mail_outbox.links(message) == [
                {"url": "https://app.example/confirm?t=abc", "text": "Confirm", "kind": "href"}]

        def test_nothing_arrives(mail_outbox):
            with pytest.raises(AssertionError, match="no message matching 'to:bob' was sent within 0 s"):
                mail_outbox.wait("to:bob", timeout=0)
            with pytest.raises(ValueError, match="quotation mark"):
                mail_outbox.wait('subject:"open')
    ''')
    project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)
