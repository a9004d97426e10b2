"""``…/<id>/checks`` and ``…/<id>/links/check`` (mounted by ``mail_gateway.outbox.tools``)."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mail_gateway.errors import FieldError, InvalidMessageError
from mail_gateway.http import docs
from mail_gateway.http.body import json_body
from mail_gateway.mail.reader import MessageReader
from mail_gateway.mail.request import validation_errors
from mail_gateway.outbox.api import kept_or_404
from mail_gateway.outbox.checks.links import MAX_LINKS, check_links, listed_links
from mail_gateway.outbox.checks.lookup import LOOKUPS, LOOKUPS_KEY
from mail_gateway.outbox.checks.report import message_checks
from mail_gateway.outbox.tool_models import LinkCheck, MessageChecks
from mail_gateway.runtime import Runtime


class LinkCheckBody(BaseModel):
    """Which of the message's links to fetch; without a body, all of them (at most ``MAX_LINKS``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="LinkCheckRequest")

    urls: list[str] | None = Field(None, max_length=MAX_LINKS, description="some of the message's links (as its "
                                                                            "checks list them)")


@docs.operation("Check a kept message: HTML compatibility with mail clients, size, warnings and links",
                operation_id="check_outbox_message", tag="outbox", responses={200: MessageChecks},
                problems=(401, 404))
def message_checks_view(message_id: str) -> dict[str, Any]:
    return message_checks(kept_or_404(message_id))


@docs.operation("Fetch a kept message's http(s) links, with bounded time and size, and list each one's status "
                "and redirects", operation_id="check_outbox_message_links", tag="outbox",
                body=LinkCheckBody, responses={200: LinkCheck}, problems=(400, 401, 403, 404, 415, 422))
def check_links_view(message_id: str) -> dict[str, Any]:
    kept = kept_or_404(message_id)
    reader = MessageReader(kept.data)
    links = [link["url"] for link in listed_links(reader)]
    try:
        body = LinkCheckBody.model_validate(json_body()) if request.content_length else LinkCheckBody()
    except ValidationError as exc:
        raise InvalidMessageError(errors=validation_errors(exc)) from exc
    if body.urls is not None:
        unknown = [url for url in body.urls if url not in links]
        if unknown:
            raise InvalidMessageError(errors=[FieldError("urls", f"{unknown[0][:200]!r} is not a link of message "
                                                                 f"{message_id}; list some of its checks' links")])
        links = list(dict.fromkeys(body.urls))
    elif len(links) > MAX_LINKS:
        raise InvalidMessageError(errors=[FieldError("urls", f"the message has {len(links)} links and at most "
                                                             f"{MAX_LINKS} are fetched at once; send urls with "
                                                             f"{MAX_LINKS} of them at a time")])
    internal = Runtime.of().settings.gateway_outbox_allow_internal_links
    return {"links": check_links(links, current_app.extensions.get(LOOKUPS_KEY, LOOKUPS), internal=internal)}
