"""aiosmtpd's own replies, as the ingress words them: an enhanced status code each, and the limit and the fix."""

from __future__ import annotations

import base64
import logging
import re
import socket

from smtp_server import HOST

ENHANCED = re.compile(rb"^\d{3}[ -]\d\.\d{1,3}\.\d{1,3} ")


def replies(port: int, *commands: bytes) -> list[bytes]:
    """The reply to each command, sent one at a time over a raw socket (smtplib would fix some of them)."""
    with socket.create_connection((HOST, port), timeout=15) as sock, sock.makefile("rb") as reader:
        reader.readline()  # the greeting
        answers = []
        for command in commands:
            sock.sendall(command)
            lines = [reader.readline()]
            while lines[-1][3:4] == b"-":
                lines.append(reader.readline())
            answers.append(b"".join(lines))
        return answers


def test_aiosmtpd_refusals_carry_enhanced_codes_and_name_the_limit(ingress_factory) -> None:
    ingress = ingress_factory(mail_backend="memory", gateway_smtp_max_message_bytes=1024)
    too_big = b"552 5.3.4 Message is larger than GATEWAY_SMTP_MAX_MESSAGE_BYTES allows (1024 bytes)\r\n"
    before_ehlo, ehlo, sized, rcpt_first, mail, nested, bad_param, rcpt, data, end = replies(
        ingress.port, b"MAIL FROM:<app@example.com>\r\n", b"EHLO client.example\r\n",
        b"MAIL FROM:<app@example.com> SIZE=5000\r\n", b"RCPT TO:<friend@example.com>\r\n",
        b"MAIL FROM:<app@example.com>\r\n", b"MAIL FROM:<app@example.com>\r\n",
        b"RCPT TO:<friend@example.com> NOTIFY=NEVER\r\n", b"RCPT TO:<friend@example.com>\r\n", b"DATA\r\n",
        (b"x" * 70 + b"\r\n") * 30 + b".\r\n")
    assert before_ehlo.startswith(b"503 5.5.1 ") and b"EHLO" in before_ehlo
    assert b"250-ENHANCEDSTATUSCODES\r\n" in ehlo
    assert sized == too_big and end == too_big
    assert rcpt_first.startswith(b"503 5.5.1 ") and b"MAIL FROM" in rcpt_first
    assert mail.startswith(b"250 2.1.0 ") and rcpt.startswith(b"250 2.1.5 ") and data.startswith(b"354 ")
    assert nested.startswith(b"503 5.5.1 ") and b"RSET" in nested
    assert bad_param.startswith(b"555 5.5.4 ")
    assert not ingress.backend.messages


def test_syntax_errors_long_lines_and_unknown_commands_carry_enhanced_codes(ingress_factory) -> None:
    ingress = ingress_factory(mail_backend="memory")
    answers = replies(ingress.port, b"EHLO client.example\r\n", b"MAIL TO:<app@example.com>\r\n",
                      b"NOOP " + b"x" * 600 + b"\r\n", b"FROB\r\n", b"NOOP\r\n", b"STARTTLS\r\n",
                      b"MAIL FROM:<app@example.com>\r\n", b"RCPT TO:<friend@example.com>\r\n", b"DATA\r\n",
                      b"Subject: long\r\n\r\n" + b"y" * 1200 + b"\r\n.\r\n", b"QUIT\r\n")
    _, syntax, long_command, unknown, noop, starttls, *_, long_line, bye = answers
    for answer in (syntax, long_command, unknown, noop, starttls, long_line, bye):
        assert ENHANCED.match(answer), answer
    assert syntax.startswith(b"501 5.5.4 ") and long_command.startswith(b"500 5.5.6 ")
    assert long_line.startswith(b"500 5.5.6 ") and b"1000 octets" in long_line
    assert unknown.startswith(b"500 5.5.2 ")
    assert starttls.startswith(b"454 4.7.0 ") and b"GATEWAY_SMTP_TLS_CERT" in starttls
    assert not ingress.backend.messages


def test_the_replies_to_help_and_vrfy_carry_enhanced_codes_and_help_is_answered_214(ingress_factory) -> None:
    # RFC 2034 3: every 2xx, 4xx and 5xx reply but the greeting and the answer to EHLO or HELO has one; RFC 5321
    # 4.3.2: HELP is answered 214 (211 for status), not 250.
    ingress = ingress_factory(mail_backend="memory")
    _, help_all, help_noop, vrfy = replies(ingress.port, b"EHLO client.example\r\n", b"HELP\r\n", b"HELP NOOP\r\n",
                                           b"VRFY <friend@example.com>\r\n")
    assert help_all.startswith(b"214 2.0.0 Supported commands: ")
    assert help_noop == b"214 2.0.0 Syntax: NOOP [ignored]\r\n"
    assert vrfy.startswith(b"252 2.0.0 Cannot VRFY user")



def test_help_lists_mail_and_auth_and_gives_their_syntax(ingress_factory) -> None:
    ingress = ingress_factory(mail_backend="memory", gateway_smtp_users="app:correct-horse",
                              gateway_smtp_allow_insecure_auth=True)
    plain = base64.b64encode(b"\0app\0correct-horse")
    _, auth, help_all, help_mail, help_auth = replies(ingress.port, b"EHLO client.example\r\n",
                                                      b"AUTH PLAIN " + plain + b"\r\n", b"HELP\r\n",
                                                      b"HELP MAIL\r\n", b"HELP AUTH\r\n")
    assert auth.startswith(b"235 ")  # HELP, as MAIL, needs AUTH first here
    assert help_all.split(b": ", 1)[1].split() == [b"AUTH", b"DATA", b"EHLO", b"HELO", b"HELP", b"MAIL", b"NOOP",
                                                   b"QUIT", b"RCPT", b"RSET", b"VRFY"]
    assert help_mail.endswith(b" Syntax: MAIL FROM: <address> [SP <mail-parameters>]\r\n")
    assert help_auth.endswith(b" Syntax: AUTH <mechanism>\r\n")


def test_help_does_not_list_auth_where_it_is_not_offered(ingress_factory) -> None:
    ingress = ingress_factory(mail_backend="memory")
    _, help_all = replies(ingress.port, b"EHLO client.example\r\n", b"HELP\r\n")
    assert b" MAIL " in help_all and b"AUTH" not in help_all


def test_a_refusal_quoting_a_long_command_or_address_keeps_to_512_octets_a_line(ingress_factory) -> None:
    # RFC 5321 4.5.3.1.5: a reply line is at most 512 octets with its CRLF. A refusal quoting the client's command
    # (an unknown one of 505 octets) or address was as long as that, up to 550 octets.
    ingress = ingress_factory(mail_backend="memory")
    _, unknown, sender, _, recipient = replies(
        ingress.port, b"EHLO client.example\r\n", b"X" * 505 + b"\r\n", b"MAIL FROM: " + b"y" * 490 + b"\r\n",
        b"MAIL FROM:<app@example.com>\r\n", b"RCPT TO: " + b"z" * 492 + b"\r\n")
    for answer in (unknown, sender, recipient):
        assert ENHANCED.match(answer) and answer.endswith(b"\r\n"), answer
        assert all(len(line) <= 512 for line in answer.splitlines(keepends=True)), answer
    assert unknown == b"500 5.5.2 Command not recognized; HELP lists the commands\r\n"
    assert sender.startswith(b"5") and recipient.startswith(b"5")
    assert not ingress.backend.messages


def test_an_unknown_command_is_not_quoted_back(ingress_factory) -> None:
    # aiosmtpd quoted it, control characters and all (ESC, BEL, VT; a bare CR from a line split at LF), and a
    # password a client sends after a failed AUTH is such a command.
    ingress = ingress_factory(mail_backend="memory")
    for command in (b"X\x1b[31mred\x07\x0bX\r\n", b"\rMAIL FROM:<app@example.com>\r\n", b"Sup3r-Secret-pw\r\n"):
        [answer] = replies(ingress.port, command)
        assert answer == b"500 5.5.2 Command not recognized; HELP lists the commands\r\n", command


def test_addresses_the_standard_librarys_parser_trips_on_are_syntax_errors(ingress_factory, caplog) -> None:
    # aiosmtpd catches the parser's HeaderParseError only: IndexError, AttributeError and UnboundLocalError
    # answered 451 4.3.0 with a traceback logged, and a client retries a 4xx for ever. VRFY quoted what it could
    # not read back, 8-bit octets and all, which failed to encode (451 too).
    ingress = ingress_factory(mail_backend="memory")
    _, *answers = replies(ingress.port, b"EHLO client.example\r\n", b"MAIL FROM:<\r\n", b'MAIL FROM:"\r\n',
                          b"MAIL FROM:<a@[127.0.0.1>\r\n", b"MAIL FROM:a@[\r\n", "MAIL FROM:\u3002@[ \r\n".encode(),
                          b"MAIL FROM:<app@example.com>\r\n", b"RCPT TO:<@\r\n", b"VRFY ,\xff\r\n",
                          b'VRFY "\r\n', b"VRFY ,\xc3\xa9\r\n", b"RCPT TO:<friend@example.com>\r\n")
    *senders, mail, recipient, vrfy_8bit, vrfy_quote, vrfy_utf8, rcpt = answers
    # As aiosmtpd answers an address whose HeaderParseError it catches.
    assert senders == [b"553 5.1.3 Error: malformed address\r\n"] * 5, senders
    assert mail.startswith(b"250 ") and rcpt.startswith(b"250 ")
    assert recipient == b"553 5.1.3 Error: malformed address\r\n", recipient
    assert vrfy_8bit == vrfy_quote == vrfy_utf8 == b"501 5.1.3 Not an address; give VRFY <address>\r\n"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

