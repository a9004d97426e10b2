"""Build the flask-mailman message a validated request describes."""

from __future__ import annotations

from email.utils import formatdate, make_msgid

from flask_mailman import EmailMultiAlternatives

from backends.addresses import envelope_address
from backends.rendering import addr_spec
from gateway.schemas import MessageRequest


def build_message(request: MessageRequest, *, default_sender: str | None) -> EmailMultiAlternatives:
    sender = request.from_ or default_sender
    assert sender is not None  # parse_message_request refuses a request with neither
    domain = envelope_address(addr_spec(sender)).rpartition("@")[2]
    headers = {
        **request.headers,
        # Set here so the ID returned to the caller is the one on the wire, and so the Date does not depend
        # on an application context.
        "Message-ID": make_msgid(domain=domain),
        "Date": formatdate(localtime=False),
    }
    html_only = request.text is None
    message = EmailMultiAlternatives(
        subject=request.subject,
        body=request.html if html_only else request.text,
        from_email=sender,
        to=request.to,
        cc=request.cc,
        bcc=request.bcc,
        reply_to=request.reply_to,
        headers=headers,
    )
    # flask-mailman otherwise reads the charset from the current application on every render.
    message.encoding = "utf-8"
    if html_only:
        message.content_subtype = "html"
    elif request.html is not None:
        message.attach_alternative(request.html, "text/html")
    return message
