"""The JSON shapes of a kept message in the outbox API: a short summary for lists, the full view for one."""

from __future__ import annotations

from typing import Any

from mail_gateway.backends.keeping import KeptState
from mail_gateway.backends.kept import KeptMessage, KeptSummary, summarize
from mail_gateway.mail.reader import MessageReader
from mail_gateway.outbox import links
from mail_gateway.outbox.models import LINKS_LISTED
from mail_gateway.settings.senders import key_name


def _date(reader: MessageReader) -> str | None:
    date = reader.date
    return None if date is None else date.isoformat()


def summary(kept: KeptMessage, reader: MessageReader) -> dict[str, Any]:
    return {
        "id": kept.id,
        "message_id": reader.message_id,
        "from": reader.from_,
        "to": reader.to,
        "cc": reader.cc,
        "subject": reader.subject,
        "date": _date(reader),
        "size": len(kept.data),
        "attachment_count": len(reader.attachments),
    }


def detail(kept: KeptMessage, reader: MessageReader, found: KeptSummary | None = None,
           state: KeptState | None = None) -> dict[str, Any]:
    every_link = links.links(reader)
    return {
        **listed(found if found is not None else summarize(kept), state),
        "bcc": reader.bcc,
        "headers": [{"name": name, "value": value} for name, value in reader.headers],
        "text": reader.text,
        "html": reader.html,
        "attachments": [
            {"index": a.index, "filename": a.filename, "content_type": a.content_type, "size": a.size,
             "content_id": a.content_id, "inline": a.inline}
            for a in reader.attachments
        ],
        "links": every_link[:LINKS_LISTED],
        "link_count": len(every_link),
        "codes": links.codes(reader),
        "delivery": None if state is None else state.delivery(kept.id),
        "remote_content": links.remote_content(reader),
    }


def listed(found: KeptSummary, state: KeptState | None = None) -> dict[str, Any]:
    """A summary as lists show it, from the summary kept for the message and its read mark and owner."""
    return {"id": found.id, "message_id": found.message_id, "from": found.from_, "to": list(found.to),
            "cc": list(found.cc), "subject": found.subject, "date": found.date, "size": found.size,
            "attachment_count": found.attachment_count, "snippet": found.snippet, "tags": list(found.tags),
            "read": state is not None and state.is_read(found.id),
            "owner": None if state is None else key_name(state.owner(found.id)), "template": found.template}


def matches(found: KeptSummary, *, to: str | None, from_: str | None, subject: str | None) -> bool:
    """The list filters: each a case-insensitive substring of the field (``to`` also searches Cc and Bcc)."""
    def contains(haystack: str, needle: str | None) -> bool:
        return needle is None or needle.casefold() in haystack.casefold()

    recipients = " ".join(found.to + found.cc + found.bcc)
    return contains(recipients, to) and contains(found.from_, from_) and contains(found.subject, subject)
