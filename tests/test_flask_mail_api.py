"""Flask-Mail's API on the gateway: ``Message``, ``Attachment``, ``mail.send``, ``send_message``, ``connect``,
``record_messages`` and ``email_dispatched``, with what Flask-Mail callers catch."""

from __future__ import annotations

import email.policy
from email.utils import formatdate, parsedate_to_datetime

import flask_mail
import flask_mailman
import pytest
from flask import Flask
from smtp_server import HOST

from mail_gateway import Attachment, BadHeaderError, Mail, Message, email_dispatched
from mail_gateway.errors import ConfigurationError, InvalidMessageError
from mail_gateway.mail.result import SendResult


def app_in_testing(**config) -> tuple[Flask, Mail]:
    app = Flask(__name__)
    app.config.update({"TESTING": True, "MAIL_DEFAULT_SENDER": "support@example.com", **config})
    return app, Mail(app)


def parsed(sent) -> email.message.EmailMessage:
    return email.message_from_bytes(sent.data, policy=email.policy.default)


def test_message_takes_flask_mails_arguments_in_flask_mails_order() -> None:
    app, mail = app_in_testing()
    attachment = Attachment("report.csv", "text/csv", b"a,b")
    with app.app_context():
        msg = Message("Report", ["to@example.com"], "See attached.", "<p>See attached.</p>", None,
                      ("Reports", "reports@example.com"), ["cc@example.com"], ["bcc@example.com"], [attachment],
                      "replies@example.com", 1_700_000_000.0, "utf-8", {"X-Report": "monthly"})
        result = mail.send(msg)
        [sent] = mail.outbox
    assert isinstance(result, SendResult) and msg.gateway_status is result
    headers = parsed(sent)
    assert headers["From"] == "Reports <reports@example.com>" and headers["Cc"] == "cc@example.com"
    assert headers["Reply-To"] == "replies@example.com" and headers["X-Report"] == "monthly"
    assert headers["Date"] == formatdate(1_700_000_000.0, localtime=True) and "Bcc" not in headers
    assert sorted(r.email for r in result.recipients) == ["bcc@example.com", "cc@example.com", "to@example.com"]
    assert (sent.body, sent.alternatives) == ("See attached.", [("<p>See attached.</p>", "text/html")])
    assert sent.attachments == [("report.csv", "a,b", "text/csv")]  # text, as flask-mailman's outbox holds it
    assert (sent.cc, sent.bcc, sent.reply_to) == (["cc@example.com"], ["bcc@example.com"], ["replies@example.com"])
    assert sent.extra_headers["X-Report"] == "monthly"


def test_a_message_built_outside_an_app_context_gets_the_default_sender_when_sent() -> None:
    app, mail = app_in_testing()
    msg = Message("Hi", recipients=["to@example.com"], body="x")  # Flask-Mail could not read the default here
    with app.app_context():
        assert mail.default_sender == "support@example.com"  # the extension answers its state's attributes
        mail.send(msg)
        assert mail.outbox[0].from_email == "support@example.com"


def test_a_default_sender_pair_set_at_run_time_sends_a_message_built_outside_an_app_context() -> None:
    # Before: the pair was written as From: "('Support', 'support@example.com')" and refused.
    app, mail = app_in_testing()
    msg = Message("Hi", recipients=["to@example.com"], body="x")
    with app.app_context():
        mail.default_sender = ("Support", "support@example.com")
        mail.send(msg)
        assert mail.outbox[0].from_email == "Support <support@example.com>"


@pytest.mark.parametrize("field", ["recipients", "cc", "bcc"])
def test_a_string_where_a_list_of_addresses_belongs_is_refused_saying_so(field) -> None:
    # Before: one "not a valid email address" error per character of the string.
    expected = r"a list of addresses; got a string: give \['to@example.com'\]"
    with pytest.raises(InvalidMessageError, match=expected) as caught:
        Message("Hi", body="x", sender="from@example.com", **{field: "to@example.com"})
    assert caught.value.field == field
    app, mail = app_in_testing()
    with app.app_context():
        msg = flask_mail.Message("Hi", recipients=["other@example.com"], body="x")
        setattr(msg, field, "to@example.com")
        with pytest.raises(InvalidMessageError, match="got a string") as caught:
            mail.send(msg)
        assert caught.value.field == field and len(mail.outbox) == 0


def test_mail_app_and_connection_num_emails_are_flask_mails() -> None:
    # Before: AttributeError for both.
    app, mail = app_in_testing()
    assert mail.app is app and Mail().app is None
    with app.app_context(), mail.connect() as conn:
        assert conn.num_emails == 0
        for _ in range(2):
            conn.send(Message("Hi", recipients=["to@example.com"], body="x"))
        assert conn.num_emails == 2


def test_send_message_attach_and_an_inline_image() -> None:
    app, mail = app_in_testing()
    with app.app_context(), mail.record_messages() as outbox:
        mail.send_message(subject="Logo", recipients=["to@example.com"], html='<img src="cid:logo">')
        msg = Message("Attached", recipients=["to@example.com"], body="Hi")
        msg.attach("logo.png", "image/png", b"\x89PNG...", "inline", {"Content-ID": "<logo>"})
        msg.attach(data="plain text")
        mail.send(msg)
        first, second = mail.outbox
    assert [m.subject for m in outbox] == ["Logo", "Attached"]
    assert first.body == '<img src="cid:logo">' and first.message().get_content_type() == "text/html"
    [logo, text] = second.reader.attachments
    assert (logo.filename, logo.inline, logo.content_id, logo.content) == ("logo.png", True, "logo", b"\x89PNG...")
    assert (text.content_type, text.content) == ("text/plain", b"plain text")


def test_default_sender_as_a_name_and_address_pair() -> None:
    app, mail = app_in_testing(MAIL_DEFAULT_SENDER=("Support", "support@example.com"))
    with app.app_context():
        mail.send(Message("Hi", recipients=["to@example.com"], body="x"))
        assert mail.outbox[0].from_email == "Support <support@example.com>"


def test_record_messages_and_the_email_dispatched_signal() -> None:
    app, mail = app_in_testing()
    seen = []

    def dispatched(sender, message):
        seen.append((sender, message))

    with app.app_context(), email_dispatched.connected_to(dispatched), mail.record_messages() as outbox:
        msg = Message("Hi", recipients=["to@example.com"], body="x")
        mail.send(msg)
    assert outbox == [msg] and seen == [(app, msg)]


def test_flask_mails_own_email_dispatched_signal_is_sent_too() -> None:
    # Before: a receiver connected to flask_mail.email_dispatched, an import left as it was (or another extension's
    # listener), heard nothing once Mail and Message came from mail_gateway.
    app, mail = app_in_testing()
    heard = []

    def dispatched(sender, message):
        heard.append((sender, message.subject))

    with flask_mail.email_dispatched.connected_to(dispatched), app.app_context():
        mail.send(Message("Hi", recipients=["to@example.com"], body="x"))
        mail.send_mail("Mailman", "x", None, ["to@example.com"])
    assert heard == [(app, "Hi"), (app, "Mailman")]


def test_a_mail_built_with_an_app_sends_and_records_outside_an_app_context() -> None:
    app, mail = app_in_testing()

    @app.get("/send")
    def send() -> str:
        mail.send(Message("Hello", recipients=["to@example.com"], body="x"))
        return "sent"

    with mail.record_messages() as outbox:  # Flask-Mail's testing recipe, outside any app context
        with app.test_client() as c:
            c.get("/send")
    assert [m.subject for m in outbox] == ["Hello"]
    mail.send(Message("Direct", recipients=["to@example.com"], body="x"))
    mail.send_message(subject="Keywords", recipients=["to@example.com"], body="x")
    with mail.connect() as conn:
        conn.send(Message("Connected", recipients=["to@example.com"], body="x"))
    mail.get_connection().send_messages([flask_mailman.EmailMessage("Mailman", "x", "app@example.com",
                                                                    ["to@example.com"])])
    assert mail.default_sender == "support@example.com" and mail.backend.name == "memory"
    assert [m.subject for m in mail.outbox] == ["Hello", "Direct", "Keywords", "Connected", "Mailman"]


def test_inside_an_app_context_the_current_app_wins_over_the_app_given_to_mail() -> None:
    app, mail = app_in_testing()
    other = Flask("other")
    other.config.update({"TESTING": True, "MAIL_DEFAULT_SENDER": "other@example.com"})
    mail.init_app(other)
    with other.app_context(), mail.record_messages() as outbox:
        mail.send(Message("Other", recipients=["to@example.com"], body="x"))
        assert mail.default_sender == "other@example.com" and len(mail.outbox) == 1
    mail.send(Message("Own", recipients=["to@example.com"], body="x"))  # outside: the app given to Mail(app)
    assert [m.subject for m in outbox] == ["Other"]
    assert [m.from_email for m in Mail.state(app).mail.outbox] == ["support@example.com"]


def test_a_mail_built_without_an_app_sends_in_an_app_context_and_records_every_app() -> None:
    mail = Mail()
    first, second = Flask("first"), Flask("second")
    for app in (first, second):
        app.config.update({"TESTING": True, "MAIL_DEFAULT_SENDER": "app@example.com"})
        mail.init_app(app)
    with pytest.raises(RuntimeError, match=r"MailGateway\(\) was built without an app.*app\.app_context\(\)"):
        mail.send(Message("Nowhere", recipients=["to@example.com"], body="x", sender="app@example.com"))
    with mail.record_messages() as outbox:  # as Flask-Mail's: what every app sends during the block
        for app in (first, second):
            with app.app_context():
                mail.send(Message(app.name, recipients=["to@example.com"], body="x"))
    assert [m.subject for m in outbox] == ["first", "second"]
    with first.app_context(), mail.record_messages() as first_only:
        with second.app_context():
            mail.send(Message("Second again", recipients=["to@example.com"], body="x"))
    assert first_only == []


def test_one_connection_sends_many_over_one_smtp_session(smtp_server) -> None:
    app, mail = app_in_testing(MAIL_BACKEND="smtp", MAIL_SERVER=HOST, MAIL_PORT=smtp_server.port)
    with app.app_context(), mail.connect() as conn:
        for n in range(3):
            conn.send(Message(f"Message {n}", recipients=["to@example.com"], body="x"))
        conn.send_message(subject="Message 3", recipients=["to@example.com"], body="x")
    assert len(smtp_server.messages) == 4 and smtp_server.handler.connections == 1
    Mail.state(app).sender.close()


def test_envelope_from_is_the_smtp_sender_and_the_header_stays(smtp_server) -> None:
    app, mail = app_in_testing(MAIL_BACKEND="smtp", MAIL_SERVER=HOST, MAIL_PORT=smtp_server.port)
    with app.app_context(), mail.connect() as conn:
        conn.send(Message("Hi", recipients=["to@example.com"], body="x"), envelope_from="bounces@example.com")
    [received] = smtp_server.messages
    assert received.mail_from == "bounces@example.com" and b"From: support@example.com" in received.data
    Mail.state(app).sender.close()


def test_each_send_of_a_reused_message_is_its_own_message() -> None:
    app, mail = app_in_testing()
    with app.app_context():
        msg = Message("Hi", recipients=["to@example.com"], body="x", extra_headers={"X-Tag": "a"})
        mail.send(msg)
        first_id, first_date = msg.msgId, msg.date
        mail.send(msg)
        first, second = mail.outbox
    assert first.message_id == first_id and second.message_id == msg.msgId != first_id
    assert msg.date > first_date
    assert parsedate_to_datetime(parsed(second)["Date"]).timestamp() == int(msg.date)
    assert msg.extra_headers == {"X-Tag": "a"}


def test_a_sent_message_renders_with_the_message_id_and_date_it_was_sent_with() -> None:
    # Before: each as_string() after a send rendered a new Message-ID and Date, as if it were sent again.
    app, mail = app_in_testing()
    with app.app_context(), mail.record_messages() as outbox:
        msg = Message("Hi", recipients=["to@example.com"], body="x")
        mail.send(msg)
        text = outbox[0].as_string()
        assert text == msg.as_string() and msg.as_bytes() == mail.outbox[0].data
        assert f"Message-ID: {msg.msgId}" in text and mail.outbox[0].message_id == msg.msgId
        mail.send(msg)  # sent again: a new message, shown as such
        second = mail.outbox[1]
    assert second.message_id == msg.msgId != mail.outbox[0].message_id and msg.as_bytes() == second.data


@pytest.mark.parametrize("make", [Message, flask_mail.Message])
@pytest.mark.parametrize(("msg_id", "injection"), [
    ("<a@example.com>\r\nBcc: victim@example.com", True), ("<a\x00@example.com>", True),
    ("<a\ud800@example.com>", True), ("<café@example.com>", False), ("not-bracketed", False),
    ("<a b@example.com>", False),
])
def test_a_msgid_is_checked_as_a_message_id_header_is(make, msg_id, injection) -> None:
    # Before: a line break raised the email package's HeaderParseError, NUL or a lone surrogate was written as
    # given, and a non-ASCII one became an RFC 2047 encoded word.
    app, mail = app_in_testing()
    with app.app_context():
        msg = make("Hi", recipients=["to@example.com"], body="x")
        msg.msgId = msg_id
        with pytest.raises(InvalidMessageError, match="msgId") as caught:
            mail.send(msg)
        assert caught.value.field == "msgId" and len(mail.outbox) == 0
    assert isinstance(caught.value, BadHeaderError) is injection


def test_a_date_the_caller_set_is_kept_on_every_send() -> None:
    app, mail = app_in_testing()
    with app.app_context():
        msg = Message("Hi", recipients=["to@example.com"], body="x", date=1_600_000_000.0)
        mail.send(msg)
        mail.send(msg)
        assert {parsed(m)["Date"] for m in mail.outbox} == {formatdate(1_600_000_000.0, localtime=True)}


def test_flask_mails_and_flask_mailmans_own_messages_are_sent_too() -> None:
    app, mail = app_in_testing()
    with app.app_context():
        mail.send(flask_mail.Message("From Flask-Mail", recipients=["to@example.com"], body="x"))
        mail.send(flask_mailman.EmailMessage("From flask-mailman", "x", to=["to@example.com"]))
        assert [(m.subject, m.from_email) for m in mail.outbox] == [
            ("From Flask-Mail", "support@example.com"), ("From flask-mailman", "support@example.com")]


@pytest.mark.parametrize("make", [Message, flask_mail.Message])
def test_a_header_line_break_is_a_bad_header_error_of_every_kind(make) -> None:
    app, mail = app_in_testing()
    with app.app_context():
        msg = make(subject="Hi\r\nBcc: victim@example.com", recipients=["to@example.com"], body="x")
        with pytest.raises(BadHeaderError) as caught:
            mail.send(msg)
        assert len(mail.outbox) == 0
    assert isinstance(caught.value, flask_mail.BadHeaderError)
    assert isinstance(caught.value, flask_mailman.BadHeaderError) and isinstance(caught.value, InvalidMessageError)


@pytest.mark.parametrize("make", [Message, flask_mail.Message])
@pytest.mark.parametrize(("field", "value"), [
    ("subject", "Hi\x0bBcc: victim@example.com"), ("sender", "Ann\x00 <from@example.com>"),
    ("recipients", [("Ann\u2028Bcc: victim@example.com", "to@example.com")]), ("cc", ["cc\x85@example.com"]),
    ("reply_to", ("Ann\x0b", "replies@example.com")),
])
def test_a_control_character_in_a_header_is_a_bad_header_error_too(make, field, value) -> None:
    # Before: a plain InvalidMessageError, not BadHeaderError, and has_bad_headers() said False.
    app, mail = app_in_testing()
    with app.app_context():
        msg = make(**{"subject": "Hi", "recipients": ["to@example.com"], "body": "x", field: value})
        with pytest.raises(BadHeaderError, match="header injection") as caught:
            mail.send(msg)
        assert caught.value.field == field and len(mail.outbox) == 0
    assert isinstance(caught.value, flask_mail.BadHeaderError)
    if make is Message:
        assert msg.has_bad_headers() and msg.is_bad_headers()


@pytest.mark.parametrize("make", [Message, flask_mail.Message])
@pytest.mark.parametrize("field", ["recipients", "cc", "bcc", "reply_to"])
def test_an_address_that_is_not_a_name_and_address_pair_is_refused_naming_its_field(make, field) -> None:
    # Before: a TypeError from inside the gateway (name_and_address() takes 2 positional arguments).
    app, mail = app_in_testing()
    address = ("Ann", "ann@example.com", "extra")
    with app.app_context():
        msg = make("Hi", recipients=["to@example.com"], body="x")
        setattr(msg, field, address if field == "reply_to" else [address])
        with pytest.raises(InvalidMessageError, match=r"\(name, address\) pair of strings") as caught:
            mail.send(msg)
    assert caught.value.field == field
    with pytest.raises(InvalidMessageError, match="pair") as caught:
        Message("Hi", recipients=["to@example.com"], sender=("Ann", None))
    assert caught.value.field == "sender"


def test_a_body_given_as_bytes_is_read_in_the_messages_charset() -> None:
    # Before: bytes were read as UTF-8, so Latin-1 ones were refused ("text: must be a valid string").
    app, mail = app_in_testing()
    with app.app_context():
        mail.send(Message("Hi", recipients=["to@example.com"], body=b"caf\xe9", html=b"<p>caf\xe9</p>",
                          alts={"enriched": b"caf\xe9"}, charset="iso-8859-1"))
        sent = mail.outbox[0]
        assert sent.body == "café" and sent.alternatives[0] == ("<p>café</p>", "text/html")
        assert b'Content-Type: text/enriched; charset="iso-8859-1"' in sent.data and sent.data.count(b"caf\xe9") == 3
        for field, values in (("body", {"body": b"caf\xe9"}), ("html", {"html": b"\xff"})):
            with pytest.raises(InvalidMessageError, match="not utf-8") as caught:
                mail.send(Message("Hi", recipients=["to@example.com"], **values))
            assert caught.value.field == field


@pytest.mark.parametrize("make", [Message, flask_mail.Message])
@pytest.mark.parametrize("charset", ["utf8x", "rot13", "utf 8", "utf\r\n8"])
def test_a_charset_that_is_no_known_charset_name_is_refused_naming_it(make, charset) -> None:
    # Before: a LookupError from the composer, and "utf 8" (which Python's codec lookup reads as utf_8) was
    # written into the Content-Type as given, line break included.
    app, mail = app_in_testing()
    with app.app_context():
        with pytest.raises(InvalidMessageError, match="charset") as caught:
            mail.send(make("Hi", recipients=["to@example.com"], body="x", charset=charset))
        assert caught.value.field == "charset" and len(mail.outbox) == 0
    assert isinstance(caught.value, BadHeaderError) is ("\n" in charset)


def test_a_folded_subject_is_sent_unfolded() -> None:
    app, mail = app_in_testing()
    with app.app_context():
        mail.send(Message("testing\r\n testing", recipients=["to@example.com"], body="x"))
        assert mail.outbox[0].subject == "testing testing"


class LazyText:
    """What Flask-Babel's lazy_gettext() gives: not a str, its text read with str() when the message is built."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __bool__(self) -> bool:
        return bool(self.text)


def test_a_subject_and_bodies_given_as_lazy_text_are_sent_as_their_text() -> None:
    # Before: TypeError (expected string or bytes-like object) for the subject, and "text: must be text" or
    # "html: must be text" for the bodies, where Flask-Mail writes what str() gives, as translated apps rely on.
    app, mail = app_in_testing()
    with app.app_context():
        msg = Message(LazyText("Welcome"), recipients=["to@example.com"], body=LazyText("Hello"),
                      html=LazyText("<p>Hello</p>"), alts={"calendar": LazyText("BEGIN:VCALENDAR")})
        assert not msg.has_bad_headers()
        mail.send(msg)
        [sent] = mail.outbox
        assert (sent.subject, sent.body) == ("Welcome", "Hello")
        assert sent.alternatives == [("<p>Hello</p>", "text/html"), ("BEGIN:VCALENDAR", "text/calendar")]
        assert Message(LazyText("a\r\nBcc: x@example.com"), recipients=["to@example.com"]).has_bad_headers()


@pytest.mark.parametrize(("fields", "missing"), [({"recipients": []}, "recipients"), ({"sender": None}, "sender")])
def test_a_message_without_sender_or_recipients_is_an_assertion_error_too(fields, missing) -> None:
    app, mail = app_in_testing()
    with app.app_context():
        mail.state().mail.default_sender = None
        values = {"subject": "Hi", "recipients": ["to@example.com"], "body": "x", **fields}
        with pytest.raises(AssertionError) as caught:
            mail.send(Message(**values))
    assert isinstance(caught.value, InvalidMessageError) and caught.value.field == missing


def test_esmtp_options_are_refused_not_ignored() -> None:
    app, mail = app_in_testing()
    with app.app_context(), pytest.raises(InvalidMessageError, match="mail_options"):
        mail.send(Message("Hi", recipients=["to@example.com"], body="x", mail_options=["SMTPUTF8"]))


def test_mail_ascii_attachments_reduces_file_names_to_ascii() -> None:
    app, mail = app_in_testing(MAIL_ASCII_ATTACHMENTS=True)
    with app.app_context():
        msg = Message("Hi", recipients=["to@example.com"], body="x")
        msg.attach("ünicödeß ←.→ ✓.txt", "text/plain", b"x")
        mail.send(msg)
        assert mail.outbox[0].attachments[0][0] == "unicode . .txt"


def test_as_string_shows_the_message_as_it_would_be_sent() -> None:
    app, _ = app_in_testing()
    with app.app_context():
        msg = Message("Hi", recipients=["to@example.com"], body="Body")
        text = msg.as_string()
    assert "Subject: Hi" in text and "From: support@example.com" in text and f"Message-ID: {msg.msgId}" in text


@pytest.mark.parametrize(("subject", "bad"), [
    ("testing", False), ("testing\r\n testing\r\n testing \r\n \ttesting", False),
    ("testing\r\n", True), ("testing\r\n testing\r\n ", True), ("testing\r\n testing\r\n\t", True),
    ("testing\r\n testing\r\n\n", True), ("testing\nBcc: x@example.com", True),
])
def test_subject_folding_is_allowed_and_other_line_breaks_are_bad_headers(subject, bad) -> None:
    msg = Message(subject, recipients=["to@example.com"], sender="from@example.com")
    assert msg.has_bad_headers() is bad
    assert Message("x", recipients=["to\r\n@example.com"], sender="from@example.com").has_bad_headers()
    assert Message("x", recipients=["to@example.com"], sender=("Name", "from@example.com")).sender == \
        "Name <from@example.com>"


def test_message_and_attachment_attributes_are_flask_mails() -> None:
    msg = Message("Hi", recipients=["to@example.com"], sender="from@example.com", cc=["cc@example.com"],
                  bcc=["bcc@example.com"], html="<p>Hi</p>")
    msg.add_recipient(("Second", "second@example.com"))
    msg.attach(data=b"this is a test", content_type="text/plain")
    msg.attach("photo.jpg", data=b"\xff\xd8")
    first, second = msg.attachments
    assert (first.filename, first.disposition, first.content_type, first.data) == (
        None, "attachment", "text/plain", b"this is a test")
    assert second.content_type == "image/jpeg"
    assert msg.send_to == {"to@example.com", ("Second", "second@example.com"), "cc@example.com", "bcc@example.com"}
    assert msg.html == "<p>Hi</p>" and msg.alts == {"html": "<p>Hi</p>"}
    msg.html = None
    assert msg.alts == {}
    assert msg.msgId.startswith("<") and msg.msgId.endswith("@example.com>") and msg.msgId == msg.msgId
    with pytest.raises(ValueError, match="data"):
        Attachment("empty.txt")


def test_mail_state_is_flask_mails_state_and_ascii_names_are_quoted_plainly() -> None:
    # Before: mail.state was a function, so setting ascii_attachments on it changed nothing (RFC 2231 names).
    app, mail = app_in_testing()
    with app.app_context():
        mail.state.ascii_attachments = True
        assert mail.state is app.extensions["mail"] and mail.state() is Mail.state(app)
        msg = flask_mail.Message("Hi", recipients=["to@example.com"], body="x")
        msg.attach(filename="ünicödeß ←.→ ✓.txt", content_type="text/plain", data=b"x")
        assert 'Content-Disposition: attachment; filename="unicode . .txt"' in msg.as_string()


def test_a_connection_sends_through_the_smtp_host_assigned_to_it(smtp_server) -> None:
    # Before: AttributeError: Connection has no attribute 'host', which Flask-Mail's users replace in tests.
    import smtplib

    app, mail = app_in_testing()
    with app.app_context(), mail.connect() as conn:
        assert conn.host is None  # the gateway's backend holds its own connections
        conn.host = smtplib.SMTP(HOST, smtp_server.port)
        msg = flask_mail.Message("Hi", sender="from@example.com", recipients=["Ann <to@example.com>"], body="x")
        conn.send(msg)
        assert len(mail.outbox) == 0
    [received] = smtp_server.messages
    assert (received.mail_from, received.rcpt_tos) == ("from@example.com", ["to@example.com"])
    assert b"Subject: Hi" in received.data and conn.host is None  # quit when the connection closed


def test_init_mail_returns_the_state_built_from_a_config() -> None:
    # Before: AttributeError: 'MailGateway' object has no attribute 'init_mail'.
    app, mail = app_in_testing(MAIL_DEFAULT_SENDER="a@example.com")
    with app.app_context():
        same = mail.init_mail(app.config, app.debug, app.testing)
        other = mail.init_mail({**app.config, "MAIL_DEFAULT_SENDER": "b@example.com", "MAIL_ASCII_ATTACHMENTS": True})
    assert vars(same) == vars(mail.state) and same is not mail.state
    assert (other.default_sender, other.ascii_attachments) == ("b@example.com", True)
    with pytest.raises(ConfigurationError, match="MAIL_PORT"):
        mail.init_mail({"MAIL_SERVER": HOST, "MAIL_PORT": 70000})


def test_an_assigned_host_gets_the_addresses_as_flask_mail_gave_them(smtp_server) -> None:
    # Before: sendmail() got the bare envelope ('to@example.com') where Flask-Mail gave the address with its name.
    import smtplib
    from email.header import Header

    class WatchedSMTP(smtplib.SMTP):
        given: list[tuple[str, list[str]]] = []

        def sendmail(self, from_addr, to_addrs, msg, mail_options=(), rcpt_options=()):
            self.given.append((from_addr, list(to_addrs)))
            return super().sendmail(from_addr, to_addrs, msg, mail_options, rcpt_options)

    app, mail = app_in_testing()
    with app.app_context(), mail.connect() as conn:
        conn.host = WatchedSMTP(HOST, smtp_server.port)
        conn.send(flask_mail.Message("Hi", sender=("Zoë", "from@example.com"), recipients=["ÄÜÖ → ✓ <to@example.com>"],
                                     body="x"))
        conn.send(flask_mail.Message("Hi", sender="from@example.com", recipients=["to@example.com"], body="x"))
    encoded = f"{Header('ÄÜÖ → ✓', 'utf-8').encode()} <to@example.com>"
    assert WatchedSMTP.given == [(f"{Header('Zoë', 'utf-8').encode()} <from@example.com>", [encoded]),
                                 ("from@example.com", ["to@example.com"])]
    # smtplib sends the addresses alone: the server sees the same envelope either way.
    assert [(m.mail_from, m.rcpt_tos) for m in smtp_server.messages] == [("from@example.com", ["to@example.com"])] * 2
