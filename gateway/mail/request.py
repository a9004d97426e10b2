"""A request to send a message, as a client describes it (to, subject, text, attachments...), validated once.

Every way in that composes a message — the HTTP routes, ``mail-gateway send`` — validates its input here and
gets a ``MessageRequest``: addresses parsed into ``Address`` values, attachments decoded to bytes, every field
checked.
Nothing after this point parses or decodes them again. The pydantic models are also what the OpenAPI
document describes, so the document cannot drift from what is accepted.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError
from typing_extensions import TypeAliasType

from mail_gateway.errors import FieldError, InvalidMessageError
from mail_gateway.mail.addresses import Address
from mail_gateway.mail.fields import (
    METADATA_PREFIX,
    AddressList,
    AlternativeType,
    Base64Bytes,
    ContentId,
    ContentType,
    Filename,
    HeaderName,
    HeaderValue,
    MailAddress,
    MetadataKey,
    Tag,
    TemplateName,
    TemplateVariables,
    Text,
)
from mail_gateway.mail.times import Rfc3339Time
from mail_gateway.settings.wording import must_be

DEFAULT_CONTENT_TYPE = "application/octet-stream"
# Each attachment is a MIME part, which reading the message back costs about 1.3 ms (the outbox's list and page,
# the standard library's parser): 10,000 one-byte files, a 760 KB request, cost 13 s of CPU at each view. A
# thousand keeps every real message and bounds that to about a second.
MAX_ATTACHMENTS = 1000
# Named, so the OpenAPI document gives each map a schema of its own rather than an inline object a generated
# client would have to name itself.
Headers = TypeAliasType("Headers", dict[HeaderName, HeaderValue])
Metadata = TypeAliasType("Metadata", dict[MetadataKey, HeaderValue])
Disposition = TypeAliasType("Disposition", Literal["attachment", "inline"])


class Attachment(BaseModel):
    """A file to attach; with ``content_id`` it is inline (an image the HTML shows as ``cid:...``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    filename: Filename | None = Field(description="the file's name as the recipient sees it; null only for a part "
                                                  "without one (an inline image)")
    content: Base64Bytes = Field(description="the file's bytes, base64-encoded")
    content_type: ContentType | None = Field(None, description="defaults to a guess from the file name")
    content_id: ContentId | None = Field(None, description="makes the attachment inline, referred to as cid:")
    disposition: Disposition | None = Field(
        None, description="how a mail client shows it; defaults to inline with a content_id, else attachment")

    @property
    def mimetype(self) -> str:
        guessed = mimetypes.guess_type(self.filename)[0] if self.filename else None
        return self.content_type or (guessed or DEFAULT_CONTENT_TYPE).lower()

    @property
    def inline(self) -> bool:
        return self.disposition == "inline" if self.disposition is not None else self.content_id is not None


class Alternative(BaseModel):
    """Another rendering of the message beside text and html, such as a calendar invitation (text/calendar)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    content: Text
    content_type: AlternativeType = Field(description="a text/ type other than text/plain and text/html (those "
                                                      "are the text and html fields), with parameters if any "
                                                      "(text/calendar; method=REQUEST); the charset is the message's")


class MessageRequest(BaseModel):
    """One message: addresses are ``a@x.org`` or ``Name <a@x.org>``, alone or in a list."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, title="Message")

    from_: MailAddress | None = Field(None, alias="from")
    to: AddressList = Field(default_factory=list)
    cc: AddressList = Field(default_factory=list)
    bcc: AddressList = Field(default_factory=list)
    # Bounded as the recipients are, and checked before its addresses are read (pydantic stops at the 51st):
    # unbounded, a request's 25 MB listed a million, read at some 250 us each into one header.
    reply_to: AddressList = Field(default_factory=list, max_length=50)
    subject: HeaderValue = ""
    text: Text | None = None
    html: Text | None = None
    alternatives: list[Alternative] = Field(default_factory=list, max_length=10,
                                            description="renderings other than text and html, after them")
    headers: Headers = Field(default_factory=dict)
    attachments: list[Attachment] = Field(default_factory=list, max_length=MAX_ATTACHMENTS,
                                          description=f"at most {MAX_ATTACHMENTS}")
    tags: list[Tag] = Field(default_factory=list, max_length=50, description="sent as the X-Tags header")
    metadata: Metadata = Field(
        default_factory=dict, max_length=50, description="each entry sent as an X-Metadata-<key> header"
    )
    send_at: Rfc3339Time | None = Field(
        None, description="when to send it, RFC 3339 with an offset (e.g. 2030-01-31T09:00:00+01:00); needs queued "
                          "delivery (GATEWAY_DELIVERY=queued), at most GATEWAY_QUEUE_MAX_SCHEDULE ahead")
    template: TemplateName | None = Field(
        None, description="a stored template (POST /v1/templates) or a file of GATEWAY_TEMPLATES_DIR, rendered with "
                          "variables into subject, text and html, which the message may not give itself")
    variables: TemplateVariables = Field(default_factory=dict, description="what the template reads")
    unsubscribe: StrictBool = Field(
        False, description="adds a one-click unsubscribe link (List-Unsubscribe, RFC 8058) for the message's one "
                           "recipient; needs GATEWAY_PUBLIC_URL and GATEWAY_UNSUBSCRIBE_SECRET")

    @property
    def recipients(self) -> list[Address]:
        """Every envelope recipient (to, cc, bcc), each once, in order."""
        seen: dict[str, Address] = {}
        for address in (*self.to, *self.cc, *self.bcc):
            seen.setdefault(address.envelope, address)  # local parts are case-sensitive; domains arrive lowercased
        return list(seen.values())

    def extra_headers(self) -> dict[str, str]:
        """The caller's headers, then X-Tags and the X-Metadata-* headers."""
        headers = dict(self.headers)
        if self.tags:
            headers["X-Tags"] = ", ".join(self.tags)
        for key, value in self.metadata.items():
            headers[METADATA_PREFIX + key] = value
        return headers


def field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part == "[key]":
            continue
        else:
            path += f".{part}" if path else str(part)
    return path or "body"


def validation_errors(exc: ValidationError) -> list[FieldError]:
    """Each invalid field and what it must be, in the gateway's words; never the value sent."""
    return [FieldError(field_path(e["loc"]), must_be(e)) for e in exc.errors(include_url=False, include_input=False)]


def too_many_recipients(count: int, max_recipients: int | None, field: str) -> list[FieldError]:
    if max_recipients is None or count <= max_recipients:
        return []
    return [FieldError(field, f"{count} recipients; at most {max_recipients} are allowed per message "
                              "(GATEWAY_MAX_RECIPIENTS): split the message")]


def check_recipient_count(payload: Any, names: tuple[str, ...], max_recipients: int | None, field: str) -> None:
    """``InvalidMessageError`` for a request listing more recipients under ``names`` than allowed, counted before
    any address is read: reading one costs some 200 us, and a request's 25 MB list millions (each invalid one an
    error to report, 120 bytes of answer for 6 of request)."""
    if isinstance(payload, dict):
        count = sum(len(value) if isinstance(value, list) else 1 for name in names
                    if (value := payload.get(name)) is not None)
        if errors := too_many_recipients(count, max_recipients, field):
            raise InvalidMessageError(errors=errors)


# Renders a request's template into its subject, text and html (``mail_gateway.templating.library``).
RenderTemplate = Callable[[MessageRequest], MessageRequest]
TEMPLATE_FILLS = ("subject", "text", "html")


def with_template(request: MessageRequest, render: RenderTemplate | None) -> MessageRequest:
    """The request with its template rendered into it, validated as if the client had sent the result."""
    given = [FieldError(name, "given with a template, which makes it; leave it out or leave out the template")
             for name in TEMPLATE_FILLS if name in request.model_fields_set]
    if given:
        raise InvalidMessageError(errors=given)
    if render is None:
        raise InvalidMessageError("templates are not available here", field="template")
    return render(request)


def parse_message_request(payload: Any, *, default_sender: Address | None, max_recipients: int | None = None,
                          render: RenderTemplate | None = None) -> MessageRequest:
    """Validate a message, its template rendered by ``render``; raise ``InvalidMessageError`` listing every
    problem with its field."""
    check_recipient_count(payload, ("to", "cc", "bcc"), max_recipients, "to")
    try:
        request = MessageRequest.model_validate(payload)
    except ValidationError as exc:
        raise InvalidMessageError(errors=validation_errors(exc)) from exc
    if request.template is not None:
        request = with_template(request, render)
    elif request.variables:
        raise InvalidMessageError("variables are read by a template; name the template too", field="variables")
    errors = []
    if request.from_ is None:
        if default_sender is None:
            errors.append(FieldError("from", "required: set \"from\" or configure MAIL_DEFAULT_SENDER"))
        else:
            request = request.model_copy(update={"from_": default_sender})
    if not (request.to or request.cc or request.bcc):
        errors.append(FieldError("to", "at least one recipient is required in to, cc or bcc"))
    if request.text is None and request.html is None and not request.alternatives:
        errors.append(FieldError("text", "give text, html or both"))
    errors += too_many_recipients(len(request.to) + len(request.cc) + len(request.bcc), max_recipients, "to")
    if errors:
        raise InvalidMessageError(errors=errors)
    return request
