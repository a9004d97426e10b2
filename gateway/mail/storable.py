"""Text that others wrote (an upstream's reply, a delivery report's diagnostic, an auto-reply's subject) as a store
can keep it: PostgreSQL holds no NUL in text and no store a lone surrogate, and a text the store refuses would
leave what it tells unrecorded (an attempt, a bounce) and the sender retrying. A client's own fields are refused
instead, naming the field (``mail_gateway.mail.fields.StoredText``)."""

from __future__ import annotations

import re

# NUL and the other control characters but tab and line ends, and lone surrogates (no UTF-8 for them).
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def storable(text: str) -> str:
    """``text`` with each character a store cannot hold written as its escape (``\\x00``, ``\\ud800``)."""
    if not _UNSTORABLE.search(text):
        return text
    return _UNSTORABLE.sub(lambda m: repr(m.group())[1:-1], text)
