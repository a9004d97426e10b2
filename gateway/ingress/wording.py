"""aiosmtpd's own replies in the gateway's words: each with an enhanced status code (RFC 3463; the ingress says
ENHANCEDSTATUSCODES in EHLO, RFC 2034) and, where aiosmtpd names neither the problem's limit nor the fix, both.

aiosmtpd writes these replies inside its command methods, so they are reworded on their way out (``reworded``,
called by ``IngressSMTP.push``) rather than by copying those methods.
"""

from __future__ import annotations

import re

# aiosmtpd quotes an unknown command back, control characters and all; Postfix says "command not recognized".
_UNKNOWN_COMMAND = re.compile(r'500 Error: command ".*" not recognized$', re.DOTALL)
UNKNOWN_COMMAND = "500 5.5.2 Command not recognized; HELP lists the commands"
MAX_REPLY_LINE = 510  # octets of a reply line before its CRLF (RFC 5321 4.5.3.1.5: 512 with it)
_ENHANCED = re.compile(r"^[245]\d\d[ -][245]\.\d{1,3}\.\d{1,3}(?: |$)")
# RFC 3463's codes for aiosmtpd's other refusals, by reply code: a bad command, bad arguments, a bad sequence.
_BY_CODE = {"500": "5.5.2", "501": "5.5.4", "502": "5.5.1", "503": "5.5.1", "504": "5.5.4", "552": "5.3.4",
            "555": "5.5.4"}
# The greeting and the replies to EHLO/HELO carry no enhanced code (RFC 2034, 3); these are aiosmtpd's others.
_SUCCESS = {"250 OK": "250 2.0.0 OK", "221 Bye": "221 2.0.0 Bye"}
# aiosmtpd's other successes begin so (HELP, VRFY, STARTTLS), each with the code and enhanced code it gets. Matched
# by their words: the answer to HELO is a bare "250 <host name>", which must stay without a code. HELP's answer is
# 214, not aiosmtpd's 250 (RFC 5321 4.3.2).
_SUCCESS_STARTS = {"250 Supported commands: ": "214 2.0.0", "250 Syntax: ": "214 2.0.0",
                   "252 Cannot VRFY ": "252 2.0.0", "220 Ready to start TLS": "220 2.0.0"}


def exact_rewordings(max_bytes: int) -> dict[str, str]:
    """aiosmtpd's replies that say too little, each as the ingress words it."""
    too_big = f"552 5.3.4 Message is larger than GATEWAY_SMTP_MAX_MESSAGE_BYTES allows ({max_bytes} bytes)"
    return {
        "552 Error: message size exceeds fixed maximum message size": too_big,
        "552 Error: Too much mail data": too_big,
        "503 Error: send HELO first": "503 5.5.1 Say HELO or EHLO with your host name first",
        "503 Error: send EHLO first": "503 5.5.1 Say EHLO with your host name first",
        "500 Line too long (see RFC5321 4.5.3.1.6)": "500 5.5.6 A line of the message is longer than 1000 octets "
                                                     "(RFC 5321 4.5.3.1.6); encode it (quoted-printable, base64)",
        "500 Command line too long": "500 5.5.6 Command line too long (at most 512 octets, RFC 5321 4.5.3.1.4)",
        "454 TLS not available": "454 4.7.0 STARTTLS is not offered here (GATEWAY_SMTP_TLS_CERT is not set)",
        "503 Error: need MAIL command": "503 5.5.1 Send MAIL FROM first",
        "503 Error: need RCPT command": "503 5.5.1 Send RCPT TO first, for at least one recipient accepted",
        "503 Error: nested MAIL command": "503 5.5.1 MAIL FROM was given already; send RSET to start again",
    }


def reworded(status: str, exact: dict[str, str]) -> str:
    """``status`` with an enhanced status code, reworded when ``exact`` has it (a multi-line reply as it is), and
    each line within what RFC 5321 allows a reply line."""
    reply = _with_codes(status, exact)
    if max(map(len, reply.split("\r\n"))) * 4 <= MAX_REPLY_LINE:  # even four octets a character would fit
        return reply
    return "\r\n".join(_fitted(line) for line in reply.split("\r\n"))


def _fitted(line: str) -> str:
    """``line`` cut to ``MAX_REPLY_LINE`` octets, its end marked: a refusal that quotes the client's address
    (``553 5.1.7 '...'``) was as long as that, up to 617 octets."""
    octets = line.encode("utf-8", "surrogateescape")
    if len(octets) <= MAX_REPLY_LINE:
        return line
    return octets[:MAX_REPLY_LINE - 3].decode("utf-8", "ignore") + "..."


def _with_codes(status: str, exact: dict[str, str]) -> str:
    if status in exact:
        return exact[status]
    if _UNKNOWN_COMMAND.match(status):  # not quoted back: it may be a password (sent after a failed AUTH)
        return UNKNOWN_COMMAND
    if status in _SUCCESS:
        return _SUCCESS[status]
    code, text = status[:3], status[4:]
    for start, codes in _SUCCESS_STARTS.items():
        if status.startswith(start):
            return f"{codes} {text}"
    if "\r\n" in status or _ENHANCED.match(status) or code not in _BY_CODE:
        return status
    return f"{code} {_BY_CODE[code]} {text.removeprefix('Error: ')}"
