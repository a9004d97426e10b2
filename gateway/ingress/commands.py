"""aiosmtpd's command handling where a hostile client made it fail: each failure answered in a reply that says
what was wrong, where aiosmtpd let an exception reach its handler (``451 4.3.0 Local error`` and a traceback in
the log, and a client that retries a bad address for ever), quoted back what could not be written, or went on.

- An address the standard library's parser trips on (``MAIL FROM:<``, ``RCPT TO:<@``, ``MAIL FROM:a@[``):
  aiosmtpd catches its HeaderParseError only; IndexError, AttributeError and UnboundLocalError escaped.
- ``VRFY`` of what is no address: aiosmtpd quoted it back, 8-bit octets and all, which failed to encode.
- ``STARTTLS`` inside TLS: aiosmtpd started a second handshake inside the first, and the session ended in one.
- An AUTH answer longer than a line may be: asyncio's reader raised ValueError.
- ``auth plain``: a mechanism's name in lower case, refused with 504.
"""

from __future__ import annotations

from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, syntax

from mail_gateway.mail.rfc5322 import PARSER_FAILURES

# HELP lists a command, and gives its syntax, only when its method carries aiosmtpd's help text (@syntax), which
# an override does not inherit: the overrides here and in ``sessions`` take the originals'. AUTH where offered.
MAIL_HELP = syntax(SMTP.smtp_MAIL.__smtp_syntax__, extended=SMTP.smtp_MAIL.__smtp_syntax_extended__)
AUTH_HELP = syntax(SMTP.smtp_AUTH.__smtp_syntax__, when="_authenticator")
DATA_HELP = syntax(SMTP.smtp_DATA.__smtp_syntax__)
VRFY_HELP = syntax(SMTP.smtp_VRFY.__smtp_syntax__)
STARTTLS_HELP = syntax(SMTP.smtp_STARTTLS.__smtp_syntax__, when="tls_context")
NOT_AN_ADDRESS = "501 5.1.3 Not an address; give VRFY <address>"
TLS_ACTIVE = "503 5.5.1 TLS is already active; send EHLO"
AUTH_ANSWER_TOO_LONG = "500 5.5.6 The AUTH answer is longer than a line may be; AUTH failed"


class HardenedCommands(SMTP):
    """aiosmtpd's SMTP protocol with the failures in the module's docstring answered."""

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        try:
            return super()._getaddr(arg)
        except RecursionError:
            raise
        except PARSER_FAILURES:  # a syntax error, answered as aiosmtpd answers one whose HeaderParseError it catches
            return None, None

    @VRFY_HELP
    async def smtp_VRFY(self, arg: str) -> None:
        if arg and self._getaddr(arg)[0] is None:
            if not await self.check_auth_needed("VRFY"):
                await self.push(NOT_AN_ADDRESS)
            return
        await super().smtp_VRFY(arg)

    @STARTTLS_HELP
    async def smtp_STARTTLS(self, arg: str) -> None:
        if self._tls_protocol is not None:
            await self.push(TLS_ACTIVE)
            return
        await super().smtp_STARTTLS(arg)

    @AUTH_HELP
    async def smtp_AUTH(self, arg: str) -> None:
        # RFC 4954 4: a mechanism's name is case-insensitive; aiosmtpd looks it up as written ("auth plain": 504).
        words = arg.split(maxsplit=1)
        await super().smtp_AUTH(" ".join([words[0].upper(), *words[1:]]) if words else arg)

    async def challenge_auth(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().challenge_auth(*args, **kwargs)
        except ValueError:  # the reader's limit: the answer up to its line end was dropped, the next line is whole
            await self.push(AUTH_ANSWER_TOO_LONG)
            return MISSING
