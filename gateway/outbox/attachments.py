"""What the attachment route serves: a kept message's attachments, under a name a header can carry."""

from __future__ import annotations

import unicodedata

from mail_gateway.mail.reader import FoundAttachment

# Characters a Content-Disposition value cannot hold (Werkzeug refuses CR and LF, which would end the header) or
# that would break the name a browser shows: controls, and the Unicode line and paragraph separators.
_UNSAFE = frozenset({"Cc", "Zl", "Zp"})


def download_name(found: FoundAttachment) -> str:
    """The attachment's own name without the characters a header cannot carry, or ``attachment-<n>`` if none is left."""
    name = "".join(c for c in found.filename or "" if unicodedata.category(c) not in _UNSAFE).strip()
    return name or f"attachment-{found.index}"
