"""The bodies and answers of the outbox's checks, link check, release and chaos switch, as pydantic models the
OpenAPI document describes them from."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool
from typing_extensions import TypeAliasType

from mail_gateway.mail.fields import JSON_INTEGER, JsonInteger
from mail_gateway.outbox.models import LINKS_LISTED

ChaosReply = TypeAliasType("ChaosReply", Literal["421", "451", "550 5.1.1", "552"])
FeatureKind = TypeAliasType("FeatureKind", Literal["element", "css", "attribute"])
CheckedLinkKind = TypeAliasType("CheckedLinkKind", Literal["href", "src"])
SupportLevel = TypeAliasType("SupportLevel", Literal["unsupported", "partial"])


class ChaosBody(BaseModel):
    """The chaos switch as ``PUT`` sets it; fields left out keep their defaults (off)."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="ChaosSwitch")

    enabled: StrictBool = False
    reply: ChaosReply | None = Field("451", description="the SMTP reply injected; null injects only the delay")
    percent: JsonInteger = Field(100, ge=0, le=100, description="of the matching sends, how many in each 100 "
                                 "fail, spread evenly (deterministic, not random)")
    recipients: str | None = Field(None, max_length=500, description="only sends to a matching envelope recipient: "
                                   "a glob (*@bounce.test) or a regular expression between slashes (/^x/)")
    delay_ms: JsonInteger = Field(0, ge=0, le=60_000, description="milliseconds each matching send waits first")


class InjectedFailure(BaseModel):
    at: str = Field(description="ISO 8601")
    recipients: list[str]
    reply: str


class ChaosState(ChaosBody):
    model_config = ConfigDict(title="ChaosState")

    backend: str = Field(description="the backend the switch applies to, when it is a development one")
    available: bool = Field(description="whether the switch may be turned on (never in production, nor with "
                                        "a backend that is not memory, console or file)")
    recent: list[InjectedFailure] = Field(description="the last 50 injected failures, newest first (empty for a "
                                                      "key that sees its own mail only)")


class Dataset(BaseModel):
    name: str
    version: str
    licence: str
    url: str


class PlatformSupport(BaseModel):
    family: str = Field(description="the client family, e.g. 'Outlook'")
    platform: str = Field(description="its platform, e.g. 'Windows', 'iOS', 'Desktop Webmail'")
    support: SupportLevel = Field(description="its newest test's result")
    notes: list[str] = Field(description="the dataset's notes on that result, e.g. what the partial support lacks")


class CompatibilityIssue(BaseModel):
    feature: str = Field(description="the dataset's title of the feature, e.g. 'display:flex'")
    slug: str = Field(description="the dataset's id of the feature (caniemail.com/features/<slug>/)")
    kind: FeatureKind
    url: str = Field(description="the feature's page on caniemail.com")
    unsupported_in: list[str] = Field(description="client families where it is not supported")
    partial_in: list[str] = Field(description="client families where it is partly supported")
    lines: list[int] = Field(description="lines of the HTML part that use it, in order, the first 20: where an "
                             "element's start tag or a <style> rule begins")
    platforms: list[PlatformSupport] = Field(description="each platform of those families that does not support "
                                             "it, or in part")
    note: str | None = Field(description="the dataset's note on the feature as a whole")


class HtmlCompatibility(BaseModel):
    dataset: Dataset
    features_used: int = Field(description="how many of the dataset's features the HTML uses")
    issues: list[CompatibilityIssue]


class SizeCheck(BaseModel):
    message_bytes: int
    html_bytes: int = Field(description="the decoded HTML part, as Gmail counts it")
    gmail_clip_bytes: int
    clipped: bool


class Warning_(BaseModel):
    model_config = ConfigDict(title="CheckWarning")

    code: str
    message: str


class ListedLink(BaseModel):
    url: str
    kind: CheckedLinkKind


class MessageChecks(BaseModel):
    """What the outbox's checks found in one kept message."""

    score: int = Field(ge=0, le=100, description="share of the client families supporting each feature used, "
                                                 "averaged over the features (100 with no HTML issue)")
    html_compatibility: HtmlCompatibility
    size: SizeCheck
    warnings: list[Warning_]
    links: list[ListedLink] = Field(description=f"the first {LINKS_LISTED} distinct links, in document order")
    link_count: int = Field(description="how many distinct links the message has, those not listed included")


class CheckedLink(BaseModel):
    url: str
    status: int | None = Field(description="the last answer's HTTP status, or null when none came")
    redirects: list[str] = Field(description="each URL redirected to, in order")
    error: str | None
    elapsed_ms: int


class LinkCheck(BaseModel):
    links: list[CheckedLink]


class ReleaseBody(BaseModel):
    """Where to release a kept message: a recipient, and a server unless GATEWAY_OUTBOX_RELEASE_URL names one."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="Release")

    to: str = Field(max_length=320, description="the envelope recipient; the message's headers stay as they are")
    host: str | None = Field(None, max_length=253, description="an SMTP server's host (default: the relay of "
                                                               "GATEWAY_OUTBOX_RELEASE_URL)")
    port: Annotated[int, Field(ge=1, le=65535), JSON_INTEGER] | None = None
    starttls: StrictBool | None = Field(
        None, description="say STARTTLS before sending (default: the relay's scheme, or no)")


class Released(BaseModel):
    released: bool
    reply: str = Field(description="the server's reply to the message, e.g. '250 2.0.0 Ok: queued'")
