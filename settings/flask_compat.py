"""Settings that Flask-Mail and flask-mailman apps bring with them, each honoured, mapped or refused.

An app moving to the gateway keeps its ``app.config``; a key one of those extensions knew must not be dropped
without a word. Those the gateway can honour are honoured (``MAIL_SUPPRESS_SEND``, ``MAIL_ASCII_ATTACHMENTS``,
``MAIL_DEFAULT_CHARSET``), ``MAIL_MAX_EMAILS`` is mapped onto ``MAIL_POOL_MAX_MESSAGES`` (settings/gateway.py),
and the rest say what to use instead when set to something the gateway would not do.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from mail_gateway.settings.core import Subject

_MIME_CHARSET = re.compile(r"[A-Za-z0-9!#$%&'+^_`{}~-]+")  # RFC 2978's mime-charset


def is_mime_charset(name: str) -> bool:
    """Whether ``name`` is a MIME charset name (it is written into Content-Type as given) of a text codec: Python's
    codec lookup also takes ``' utf-8 '``, and codecs that are not text encodings (rot13, hex, undefined)."""
    if not _MIME_CHARSET.fullmatch(name):
        return False
    try:
        "".encode(name)
    except (LookupError, UnicodeError):  # undefined raises UnicodeError for any text, the empty one too
        return False
    return True


class FlaskMailSettings(Subject):
    mail_suppress_send: bool | None = Field(
        None, description="set it to true (keep mail in memory, send nothing) or false "
        "(default: true in a Flask app with TESTING=True)",
    )
    mail_ascii_attachments: bool = Field(
        False, description="set it to true (attachment file names of Flask-Mail messages reduced to ASCII) or false"
    )
    mail_default_charset: str = Field(
        "utf-8", description="set it to a character set Python knows, e.g. utf-8 or iso-8859-1"
    )
    mail_memory_keeps_any_address: bool = Field(
        False, description="set it to true (the memory backend keeps a flask-mailman message without a sender, or "
        "to an address without a domain such as tester, as flask-mailman's locmem did; every other backend still "
        "refuses it) or false",
    )
    mail_max_emails: int | None = Field(
        None, ge=1, description="set it to how many messages one SMTP connection sends before it is replaced "
        "(at least 1); it is MAIL_POOL_MAX_MESSAGES under the name Flask-Mail gave it",
    )
    mail_debug: bool = Field(
        False, description="set it to false or remove it; every delivery is logged on the mail_gateway.delivery "
        "logger instead",
    )
    # The gateway always writes the local time with its offset: the same instant flask-mailman's UTC Date
    # names, so either value is honoured.
    mail_use_localtime: bool | None = Field(None, description="set it to true or false")
    mail_send_options: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="remove it; the gateway chooses the MAIL FROM options itself (SIZE)",
    )

    @field_validator("mail_default_charset")
    @classmethod
    def _known_charset(cls, value: str) -> str:
        # Checked as each message's own charset is (mail_gateway.mail.charsets), so no send fails on it later.
        if not is_mime_charset(value):
            raise ValueError(f"{value!r} is not the name of a character set Python knows")
        return value

    @field_validator("mail_debug")
    @classmethod
    def _no_smtp_transcript(cls, value: bool) -> bool:
        if value:
            raise ValueError("the gateway does not print the SMTP conversation")
        return value

    @field_validator("mail_send_options", mode="before")
    @classmethod
    def _no_send_options(cls, value: Any) -> tuple[str, ...]:
        if value in (None, "", (), []):
            return ()
        raise ValueError("the gateway does not pass ESMTP options of the app's choosing to MAIL FROM")
