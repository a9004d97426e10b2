"""Build the flask-mailman message a validated request describes."""

from __future__ import annotations

from email.mime.base import MIMEBase
from email.utils import make_msgid
from typing import Any

from flask_mailman import EmailMultiAlternatives
from flask_mailman.message import SafeMIMEMultipart

from backends.addresses import envelope_address
from backends.rendering import addr_spec, message_date
from gateway.schemas import METADATA_PREFIX, MessageRequest


class RichMessage(EmailMultiAlternatives):
    """flask-mailman's message plus inline parts: multipart/mixed[related[alternative, inline...], files...].

    flask-mailman has no multipart/related, and without it mail clients show inline images as plain
    attachments instead of inside the HTML.
    """

    def __init__(self, *args: Any, inline: list[MIMEBase] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.inline = inline or []

    def _create_message(self, msg: Any) -> Any:
        body = self._create_alternatives(msg)
        if self.inline:
            related = SafeMIMEMultipart(_subtype="related", encoding=self.encoding)
            related.attach(body)
            for part in self.inline:
                related.attach(part)
            body = related
        return self._create_attachments(body)


def _extra_headers(request: MessageRequest) -> dict[str, str]:
    headers = dict(request.headers)
    if request.tags:
        headers["X-Tags"] = ", ".join(request.tags)
    for key, value in request.metadata.items():
        headers[METADATA_PREFIX + key] = value
    return headers


def build_message(request: MessageRequest, *, default_sender: str | None) -> RichMessage:
    sender = request.from_ or default_sender
    assert sender is not None  # parse_message_request refuses a request with neither
    domain = envelope_address(addr_spec(sender)).rpartition("@")[2]
    headers = {
        **_extra_headers(request),
        # Set here so the ID returned to the caller is the one on the wire, and so the Date does not depend
        # on an application context.
        "Message-ID": make_msgid(domain=domain),
        "Date": message_date(),
    }
    html_only = request.text is None
    message = RichMessage(
        subject=request.subject,
        body=request.html if html_only else request.text,
        from_email=sender,
        to=request.to,
        cc=request.cc,
        bcc=request.bcc,
        reply_to=request.reply_to,
        headers=headers,
        inline=[a.mime_part() for a in request.attachments if a.content_id],
    )
    # flask-mailman otherwise reads the charset from the current application on every render.
    message.encoding = "utf-8"
    if html_only:
        message.content_subtype = "html"
    elif request.html is not None:
        message.attach_alternative(request.html, "text/html")
    for attachment in request.attachments:
        if not attachment.content_id:
            message.attach(attachment.mime_part())
    return message
