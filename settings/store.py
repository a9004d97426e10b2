"""Settings of the store (one database for the queue, statuses, webhook deliveries and idempotency keys) and of
queued delivery: the mode, the workers, retries and their backoff, scheduling, webhooks and the rate limit.

Every duration is in seconds and takes fractions, so tests (and impatient operators) can use small ones.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings

SQLITE_URL_PREFIX = "sqlite:///"
DEFAULT_STORE_URL = SQLITE_URL_PREFIX + ".mail-gateway.sqlite3"
DAY = 24 * 60 * 60


def _seconds(default: float, low: float, high: float, what: str) -> object:
    return Field(default, ge=low, le=high, description=f"set it to {what} in seconds, from {low:g} to {high:g} "
                                                        "(fractions allowed)")


class StoreSettings(BaseSettings):
    # GATEWAY_IDEMPOTENCY_URL is the name of earlier versions, when the store held only idempotency keys.
    gateway_store_url: str = Field(
        DEFAULT_STORE_URL, validation_alias=AliasChoices("gateway_store_url", "gateway_idempotency_url"),
        description="set it to sqlite:///relative/path.sqlite3 or sqlite:////absolute/path.sqlite3",
    )

    @field_validator("gateway_store_url")
    @classmethod
    def _sqlite_url(cls, value: str) -> str:
        # Never echoes the value: a server URL may carry a password.
        if not value.startswith(SQLITE_URL_PREFIX) or len(value) == len(SQLITE_URL_PREFIX) or "?" in value:
            raise ValueError("it is not a sqlite:/// URL with a file path")
        return value

    @property
    def store_path(self) -> str:
        return self.gateway_store_url.removeprefix(SQLITE_URL_PREFIX)


class QueueSettings(BaseSettings):
    gateway_delivery: Literal["direct", "queued"] = Field(
        "direct", description="set it to direct (send before answering) or queued (store, answer, deliver later)")
    gateway_queue_workers: int = Field(
        16, ge=1, le=256, description="set it to how many messages one process delivers at once (1 to 256)")
    gateway_queue_lease: float = _seconds(30.0, 0.1, 3600, "how long a claim outlives a process that died")
    gateway_queue_backoff_min: float = _seconds(300.0, 0.01, DAY, "the first retry's delay")
    gateway_queue_backoff_max: float = _seconds(4000.0, 0.01, 7 * DAY, "the longest delay between retries")
    gateway_queue_lifetime: float = _seconds(5 * DAY, 0.1, 60 * DAY, "how long a message is retried")
    gateway_queue_max_schedule: float = _seconds(30 * DAY, 0, 365 * DAY, "how far ahead send_at may be")
    gateway_webhook_url: str | None = Field(
        None, description="set it to the http:// or https:// URL that receives delivery events")
    gateway_webhook_secret: SecretStr | None = Field(
        None, description="set it to the endpoint's signing secret, whsec_ followed by base64")
    gateway_webhook_backoff_min: float = _seconds(5.0, 0.01, DAY, "the first webhook retry's delay")
    mail_rate_limit: float | None = Field(
        None, gt=0, le=100_000,
        description="set it to the most messages per second sent upstream (fractions allowed), or leave it unset")

    @field_validator("gateway_webhook_url", "gateway_webhook_secret", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("gateway_webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("it is not an http:// or https:// URL")
        return value

    @field_validator("gateway_webhook_secret")
    @classmethod
    def _whsec(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        import base64
        import binascii

        text = value.get_secret_value()
        try:
            ok = text.startswith("whsec_") and len(base64.b64decode(text[6:] + "==", validate=True)) >= 16
        except (binascii.Error, ValueError):
            ok = False
        if not ok:
            raise ValueError("it is not whsec_ followed by at least 16 bytes in base64")
        return value

    @property
    def queued(self) -> bool:
        return self.gateway_delivery == "queued"
