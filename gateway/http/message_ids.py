"""The ``<message_id:...>`` path segment: one segment that is never the name of a fixed route beside it.

Werkzeug tries a route with a variable segment when the fixed route of the same path does not take the method,
so ``GET /v1/outbox/bulk`` was answered by ``GET /v1/outbox/<message_id>`` (404 ``no-such-message``) and
``OPTIONS`` listed that route's methods. With this converter the fixed route alone matches its path: ``GET`` of
``/v1/outbox/bulk`` or ``/v1/messages/batch`` is 405 with the methods it takes in ``Allow``.
"""

from __future__ import annotations

import re

from flask.blueprints import BlueprintSetupState
from werkzeug.routing import BaseConverter

# The fixed routes beside /v1/outbox/<message_id> and /v1/messages/<message_id>; no message id is one of them.
FIXED = ("bulk", "wait", "owners", "chaos", "batch", "raw")


class MessageIdConverter(BaseConverter):
    regex = rf"(?!(?:{'|'.join(map(re.escape, FIXED))})(?:/|$))[^/]+"


def use_message_ids(state: BlueprintSetupState) -> None:
    """Recorded on a blueprint before its routes, so the converter is the app's when they are added."""
    state.app.url_map.converters.setdefault("message_id", MessageIdConverter)
