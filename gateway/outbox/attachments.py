"""What the attachment route serves: a kept message's attachments, parsed once for a run of requests, under a
name a header can carry."""

from __future__ import annotations

import hashlib
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mail_gateway.mail.mime_tree import FoundAttachment
from mail_gateway.mail.reader import MessageReader

if TYPE_CHECKING:
    from mail_gateway.backends.kept import KeptMessage

# Characters a Content-Disposition value cannot hold (Werkzeug refuses CR and LF, which would end the header) or
# that would break the name a browser shows: controls, and the Unicode line and paragraph separators.
_UNSAFE = frozenset({"Cc", "Zl", "Zp"})
# The page asks for each thumbnail and each download separately, and parsing a message of thousands of parts
# takes seconds: the last few messages' attachments are kept parsed, so a page of thumbnails costs one parse.
# A few, since each holds its message's decoded attachments.
_KEPT = 4


@dataclass
class _Parsed:
    lock: threading.Lock = field(default_factory=threading.Lock)  # requests arriving together wait for one parse
    found: list[FoundAttachment] | None = None


_recent: OrderedDict[tuple[str, bytes], _Parsed] = OrderedDict()  # oldest first
_recent_lock = threading.Lock()


def attachments_of(kept: KeptMessage) -> list[FoundAttachment]:
    """The kept message's attachments, parsed once while it stays among the last few asked for."""
    # Keyed by the bytes' digest as well as the id: a message kept again under the same id is parsed afresh.
    key = (kept.id, hashlib.sha256(kept.data).digest())
    with _recent_lock:
        parsed = _recent.pop(key, None) or _Parsed()
        _recent[key] = parsed
        while len(_recent) > _KEPT:
            _recent.popitem(last=False)
    with parsed.lock:
        if parsed.found is None:
            parsed.found = MessageReader(kept.data).attachments
        return parsed.found


def download_name(found: FoundAttachment) -> str:
    """The attachment's own name without the characters a header cannot carry, or ``attachment-<n>`` if none is left."""
    name = "".join(c for c in found.filename or "" if unicodedata.category(c) not in _UNSAFE).strip()
    return name or f"attachment-{found.index}"
