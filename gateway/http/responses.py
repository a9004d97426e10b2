"""The JSON the routes answer with, as pydantic models: the OpenAPI document describes responses from these."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypeAliasType

# Named, so the document gives each enum a schema of its own: a generated client would otherwise name an inline
# enum after its model and field, and two such names can collide (QueuedRecipient's status and the
# QueuedRecipientStatus model), which makes it drop the models that use them.
OutcomeState = TypeAliasType("OutcomeState", Literal["accepted", "rejected", "deferred", "suppressed"])
QueuedState = TypeAliasType("QueuedState", Literal["queued", "scheduled"])
# A recipient on the suppression list is answered ``suppressed`` and never stored.
QueuedRecipientState = TypeAliasType("QueuedRecipientState", Literal["queued", "scheduled", "suppressed"])


class RecipientOutcome(BaseModel):
    email: str
    status: OutcomeState
    code: int | None = Field(None, description="the SMTP reply code, when a server answered")
    reason: str | None = Field(None, description="the SMTP reply text, when a server answered")


class SendResponse(BaseModel):
    """With direct delivery: what the backend accepted, the Message-ID on the wire and each recipient's outcome."""

    message_id: str
    backend: str
    recipients: list[RecipientOutcome]


class QueuedRecipient(BaseModel):
    email: str
    status: QueuedRecipientState


class QueuedResponse(BaseModel):
    """With queued delivery (GATEWAY_DELIVERY=queued): stored durably, delivered by the workers; look it up by
    ``id``."""

    id: str = Field(description="the gateway's id, for GET /v1/messages/{id}")
    message_id: str
    status: QueuedState = Field(description="scheduled until its send_at, else queued")
    recipients: list[QueuedRecipient]


class FieldProblem(BaseModel):
    field: str
    message: str


class ProblemDetails(BaseModel):
    """RFC 9457 problem details; delivery errors add backend, message_id, smtp_code, smtp_text and recipients,
    never the upstream's host, port or login."""

    model_config = ConfigDict(extra="allow", title="Problem")

    type: str = Field(description="urn:mail-gateway:problem:<slug>, or about:blank")
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] | None = Field(None, description="each invalid field and how to fix it, the first 100")
    errors_omitted: int | None = Field(None, description="how many more invalid fields there are than are listed")
    backend: str | None = None
    message_id: str | None = None
    smtp_code: int | None = Field(None, description="the upstream's SMTP reply code, when it answered")
    smtp_text: str | None = Field(None, description="the upstream's SMTP reply text, when it answered")
    recipients: list[RecipientOutcome] | None = None
    extension: str | None = Field(None, description="SMTPUTF8 or 8BITMIME: what the upstream lacks "
                                  "(upstream-extension-missing)")
    template: str | None = Field(None, description="the template at fault (template-error)")
    part: str | None = Field(None, description="its part at fault: subject, text or html (template-error)")
    line: int | None = Field(None, description="the line in that part (template-error)")
    variable: str | None = Field(None, description="the variable it lacks (template-error)")


class BatchAccepted(SendResponse):
    index: int
    status: Literal["accepted"]


class BatchFailed(BaseModel):
    index: int
    status: Literal["failed"]
    error: ProblemDetails


class BatchQueued(QueuedResponse):
    index: int


class BatchResult(BaseModel):
    results: list[BatchAccepted | BatchQueued | BatchFailed] = Field(
        description="one per message, in request order: accepted (direct delivery), queued or scheduled (queued "
                    "delivery), or failed")


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    backend: str
