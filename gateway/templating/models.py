"""The JSON of the template routes, as pydantic models: they validate the bodies and the OpenAPI document is made
from them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypeAliasType

from mail_gateway.mail.fields import StoredText, TemplateName, TemplateVariables

TemplateSource = TypeAliasType("TemplateSource", Literal["store", "files"])


class TemplateParts(BaseModel):
    """A template's parts, each a Jinja2 template: a subject, and a text part, an HTML part or both (without a
    text part, one is made from the HTML)."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="TemplateParts")

    # Valid Unicode (JSON may carry "\ud800") without a NUL: the store keeps them as text, which PostgreSQL's cannot
    # hold a NUL in (a message's own text and html may: it keeps a message as bytes).
    subject: StoredText = Field(description="the subject line (one line once rendered)")
    text: StoredText | None = Field(None, description="the text part; autoescaping is off")
    html: StoredText | None = Field(None, description="the HTML part; autoescaped, its <style> rules inlined when sent")


class NewTemplate(TemplateParts):
    """A template to store under ``name``."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="NewTemplate")

    name: TemplateName = Field(description="letters, digits, '_' and '-', at most 64")


class TemplateSummary(BaseModel):
    name: str
    version: int | None = Field(description="a stored template's, from 1 up; null for a file of "
                                            "GATEWAY_TEMPLATES_DIR")
    source: TemplateSource = Field(description="store (POST /v1/templates) or files (GATEWAY_TEMPLATES_DIR, "
                                               "read-only; a file wins over a stored template of its name)")
    label: str = Field(description="what a message's X-Template header says after the name: version=N or "
                                   "file=<digest>")
    updated_at: str | None = Field(description="when it was last stored (RFC 3339); null for a file")


class TemplateDetail(TemplateSummary):
    """A template, its parts as written."""

    subject: str
    text: str | None
    html: str | None
    created_at: str | None = Field(description="when it was first stored (RFC 3339); null for a file")


class TemplateList(BaseModel):
    """Every template, by name."""

    templates: list[TemplateSummary]


class RenderRequest(BaseModel):
    """The variables to render a template with."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="RenderRequest")

    variables: TemplateVariables = Field(default_factory=dict)


class RenderedTemplate(BaseModel):
    """What a message with this template and these variables would hold; nothing is sent."""

    template: str
    version: int | None
    label: str
    subject: str
    text: str | None = Field(description="the text part, made from the HTML when the template has none")
    html: str | None = Field(description="the HTML part, its CSS inlined")
