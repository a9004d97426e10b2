"""A kept message's checks: its HTML's compatibility with mail clients and a score (``compat``), its size against
Gmail's clipping, the warnings below, and its links (``links``).

Warnings, each with a ``code``:

- ``gmail-clipped``: the HTML part is over ``GMAIL_CLIP_BYTES`` (Gmail cuts it and shows "[Message clipped]").
- ``img-missing-alt``: an ``<img>`` has no ``alt`` attribute (``alt=""`` marks a decorative image and is fine).
- ``no-text-part``: there is HTML but no text part, which some clients and many spam filters mind.
- ``css-nested-too-deep``: the CSS nests functions or ``@media``/``@supports`` rules deeper than
  ``features.MAX_DEPTH`` levels; what is deeper was not read, so the report may miss features.
- ``no-list-unsubscribe``: a bulk message without a ``List-Unsubscribe`` header. A message is bulk when its
  ``Precedence`` header says ``bulk`` or ``list``, or one of its tags (``X-Tags``, the API's ``tags``) is
  ``bulk``, ``marketing`` or ``newsletter``.
"""

from __future__ import annotations

from typing import Any

import lxml.html
from lxml import etree

from mail_gateway.backends.kept import KeptMessage
from mail_gateway.mail.reader import MessageReader
from mail_gateway.mail.tags import split_tags
from mail_gateway.outbox.checks.compat import compatibility
from mail_gateway.outbox.checks.features import MAX_DEPTH, TOO_DEEP
from mail_gateway.outbox.checks.links import listed_links
from mail_gateway.outbox.checks.usage import used_features
from mail_gateway.outbox.models import LINKS_LISTED

GMAIL_CLIP_BYTES = 102_400  # Gmail clips HTML larger than 102 KB
BULK_TAGS = {"bulk", "marketing", "newsletter"}
BULK_PRECEDENCE = {"bulk", "list"}


def _header(reader: MessageReader, name: str) -> str | None:
    return next((value for key, value in reader.headers if key.lower() == name), None)


def is_bulk(reader: MessageReader) -> bool:
    tags = {tag.casefold() for tag in split_tags(_header(reader, "x-tags") or "")}
    return bool(tags & BULK_TAGS) or (_header(reader, "precedence") or "").strip().lower() in BULK_PRECEDENCE


def images_without_alt(html: str) -> list[str]:
    try:
        root = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return []
    return [image.get("src", "") for image in root.iter("img") if image.get("alt") is None]


def warnings(reader: MessageReader, html_bytes: int, too_deep: bool = False) -> list[dict[str, str]]:
    found = []
    html = reader.html
    if html_bytes > GMAIL_CLIP_BYTES:
        found.append({"code": "gmail-clipped", "message": f"The HTML part is {html_bytes} bytes; Gmail clips HTML "
                      f"over {GMAIL_CLIP_BYTES} bytes behind a 'View entire message' link. Make it smaller."})
    missing = images_without_alt(html) if html else []
    if missing:
        found.append({"code": "img-missing-alt", "message": f"{len(missing)} image(s) have no alt attribute, "
                      f"the first {missing[0][:200]!r}; give each a text alternative (alt=\"\" if decorative)."})
    if html and reader.text is None:
        found.append({"code": "no-text-part", "message": "The message has HTML but no text part; add one for the "
                      "clients and spam filters that read text."})
    if too_deep:
        found.append({"code": TOO_DEEP, "message": f"The CSS nests deeper than {MAX_DEPTH} levels (functions within "
                      "functions, or @media and @supports rules within each other); what is deeper was not read, so "
                      "these checks may miss features it uses."})
    if is_bulk(reader) and _header(reader, "list-unsubscribe") is None:
        found.append({"code": "no-list-unsubscribe", "message": "The message is bulk (a Precedence: bulk or list "
                      "header, or a bulk, marketing or newsletter tag) but has no List-Unsubscribe header; large "
                      "mailbox providers require one (GATEWAY_UNSUBSCRIBE_SECRET with GATEWAY_PUBLIC_URL has the "
                      "gateway add it)."})
    return found


def message_checks(kept: KeptMessage) -> dict[str, Any]:
    reader = MessageReader(kept.data, kept.recipients)
    html = reader.html
    html_bytes = len(html.encode("utf-8", "surrogateescape")) if html else 0
    used = used_features(html) if html else {}
    score, report = compatibility(used)
    every_link = listed_links(reader)
    return {
        "score": score,
        "html_compatibility": report,
        "size": {"message_bytes": len(kept.data), "html_bytes": html_bytes, "gmail_clip_bytes": GMAIL_CLIP_BYTES,
                 "clipped": html_bytes > GMAIL_CLIP_BYTES},
        "warnings": warnings(reader, html_bytes, TOO_DEEP in used),
        "links": every_link[:LINKS_LISTED],
        "link_count": len(every_link),
    }
