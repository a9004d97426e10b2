"""A delivery error of the SMTP backend as the ``smtplib`` exception code written for Flask-Mail, flask-mailman or
Django catches, for the library API to raise (``mail_gateway.extension.connection``).

The gateway's own errors (``mail_gateway.errors``) are plain. Here each ``SMTP...Error`` class is both a gateway
class and the matching ``smtplib`` one, so ``except smtplib.SMTPAuthenticationError`` and ``except
PermanentDeliveryError`` both catch it; ``smtplib_compatible`` picks, from the error's class and cause, which one
a failure is (a refused login: ``SMTPAuthenticationError``; a refused sender: ``SMTPSenderRefused``; a refused
message: ``SMTPDataError``; ...), and copies the error into it with smtplib's attributes added. Only the library API
raises them.
"""

from __future__ import annotations

import smtplib
from typing import Any

from mail_gateway.errors import (
    ConnectionSetupError,
    DeliveryError,
    DeliveryOutcomeUnknownError,
    MessageTooLargeError,
    PermanentDeliveryError,
    RecipientsRefusedError,
    RecipientsSuppressedError,
    TransientDeliveryError,
)


# Each is its gateway class and the smtplib class a Django or Flask-Mail caller catches for the same failure.
class SMTPSenderRefusedError(PermanentDeliveryError, smtplib.SMTPSenderRefused): ...
class SMTPSenderDeferredError(TransientDeliveryError, smtplib.SMTPSenderRefused): ...
class SMTPRecipientsRefusedError(RecipientsRefusedError, smtplib.SMTPRecipientsRefused): ...
class SMTPRecipientsSuppressedError(RecipientsSuppressedError, smtplib.SMTPRecipientsRefused): ...
class SMTPRecipientsDeferredError(TransientDeliveryError, smtplib.SMTPRecipientsRefused): ...
class SMTPDataRefusedError(PermanentDeliveryError, smtplib.SMTPDataError): ...
class SMTPDataDeferredError(TransientDeliveryError, smtplib.SMTPDataError): ...
class SMTPLoginRefusedError(PermanentDeliveryError, smtplib.SMTPAuthenticationError): ...
class SMTPUnsupportedError(PermanentDeliveryError, smtplib.SMTPNotSupportedError): ...  # no AUTH or STARTTLS
class SMTPConnectFailedError(ConnectionSetupError, smtplib.SMTPConnectError): ...
# Refused or reset before a session began: also the builtin ConnectionError the socket raised, which callers of
# flask-mailman's and Django's open() catch.
class SMTPConnectionFailedError(SMTPConnectFailedError, ConnectionError): ...
# Refused (nothing listens on the port): also the builtin ConnectionRefusedError, which Flask-Mail and flask-mailman
# let through from the socket, so ``except ConnectionRefusedError`` around a send still catches a server that is down.
class SMTPConnectionRefusedError(SMTPConnectionFailedError, ConnectionRefusedError): ...
class SMTPDisconnectedError(TransientDeliveryError, smtplib.SMTPServerDisconnected): ...
class SMTPOutcomeUnknownError(DeliveryOutcomeUnknownError, smtplib.SMTPServerDisconnected): ...
class SMTPMessageTooLargeError(MessageTooLargeError, smtplib.SMTPException): ...
class SMTPTransientError(TransientDeliveryError, smtplib.SMTPException): ...
class SMTPPermanentError(PermanentDeliveryError, smtplib.SMTPException): ...


class RecipientOutcomes(tuple):  # type: ignore[type-arg]
    """Each recipient's ``RecipientResult``, also readable as smtplib's ``{address: (code, reply)}`` of the
    recipients refused (``items()``, ``keys()``, ``get()``, ``outcomes[address]``, ``address in outcomes``)."""

    def _refused(self) -> dict[str, tuple[int, bytes]]:
        return {r.email: (-1 if r.code is None else r.code, (r.reason or r.status).encode("utf-8", "replace"))
                for r in self if r.status != "accepted"}

    def items(self) -> Any:
        return self._refused().items()

    def keys(self) -> Any:
        return self._refused().keys()

    def values(self) -> Any:
        return self._refused().values()

    def get(self, address: str, default: Any = None) -> Any:
        return self._refused().get(address, default)

    def __getitem__(self, key: Any) -> Any:
        return self._refused()[key] if isinstance(key, str) else super().__getitem__(key)

    def __contains__(self, item: object) -> bool:
        return item in self._refused() if isinstance(item, str) else super().__contains__(item)


_SMTPLIB_BY_CLASS = {DeliveryOutcomeUnknownError: SMTPOutcomeUnknownError, ConnectionSetupError: SMTPConnectFailedError,
                     MessageTooLargeError: SMTPMessageTooLargeError, RecipientsRefusedError: SMTPRecipientsRefusedError,
                     RecipientsSuppressedError: SMTPRecipientsSuppressedError}


def _smtplib_class(exc: DeliveryError) -> type[DeliveryError] | None:
    kind, cause = type(exc), exc.__cause__
    transient = kind is TransientDeliveryError
    if kind is ConnectionSetupError and isinstance(cause, ConnectionError):
        return SMTPConnectionRefusedError if isinstance(cause, ConnectionRefusedError) else SMTPConnectionFailedError
    if kind not in (TransientDeliveryError, PermanentDeliveryError):
        return _SMTPLIB_BY_CLASS.get(kind)  # a class this mapping does not know keeps what it is
    if isinstance(cause, smtplib.SMTPAuthenticationError):
        return SMTPLoginRefusedError
    if isinstance(cause, smtplib.SMTPNotSupportedError):
        return SMTPUnsupportedError
    if exc.smtp_command == "MAIL":
        return SMTPSenderDeferredError if transient else SMTPSenderRefusedError
    if exc.smtp_command == "DATA":
        return SMTPDataDeferredError if transient else SMTPDataRefusedError
    if transient and exc.recipients:
        return SMTPRecipientsDeferredError
    if transient and isinstance(cause, OSError):
        return SMTPDisconnectedError
    return SMTPTransientError if transient else SMTPPermanentError


def smtplib_compatible(exc: DeliveryError, sender: str = "") -> DeliveryError:
    """``exc`` as an instance of the class that is also the matching ``smtplib`` exception (SMTP failures only);
    the same message, attributes and cause, plus smtplib's ``smtp_code``, ``smtp_error`` and ``sender``."""
    cls = _smtplib_class(exc) if exc.backend == "smtp" else None
    if cls is None:
        return exc
    compatible = cls.__new__(cls)
    compatible.args = exc.args
    compatible.__dict__.update(exc.__dict__, sender=sender, recipients=RecipientOutcomes(exc.recipients))
    login = exc.__cause__ if isinstance(exc.__cause__, smtplib.SMTPAuthenticationError) else None
    compatible.smtp_code = login.smtp_code if login else exc.smtp_code
    # smtplib's smtp_error is the server's reply alone; without one (a lost connection), the gateway's line.
    compatible.smtp_error = login.smtp_error if login else (exc.smtp_text or str(exc)).encode()
    return compatible


def raise_compatible(exc: DeliveryError, sender: str) -> None:
    """Raise ``exc`` as ``smtplib_compatible`` gives it, caused by ``exc`` when that is another object."""
    compatible = smtplib_compatible(exc, sender)
    if compatible is exc:
        raise exc
    raise compatible from exc
