"""Settings of the store (one database for the queue, statuses, webhook deliveries and idempotency keys), of
queued delivery (the mode, the workers, retries and their backoff, scheduling, the rate limit) and of its webhooks.

Every duration is in seconds and takes fractions, so tests (and impatient operators) can use small ones.
"""

from __future__ import annotations

import base64
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator

from mail_gateway.extras import needs_extra
from mail_gateway.settings.core import Subject
from mail_gateway.settings.store_url import DEFAULT_STORE_URL, STORE_URL_FIX, is_shared, parse_store_url
from mail_gateway.settings.webhook_url import check_webhook_url

DAY = 24 * 60 * 60


def _seconds(default: float, low: float, high: float, what: str) -> object:
    return Field(default, ge=low, le=high, description=f"set it to {what} in seconds, from {low:g} to {high:g} "
                                                        "(fractions allowed)")


class StoreSettings(Subject):
    # GATEWAY_IDEMPOTENCY_URL is the name of earlier versions, when the store held only idempotency keys.
    # A secret: a server URL may carry a password (reprs show asterisks; errors never echo it).
    gateway_store_url: SecretStr = Field(
        SecretStr(DEFAULT_STORE_URL), validation_alias=AliasChoices("gateway_store_url", "gateway_idempotency_url"),
        description=STORE_URL_FIX,
    )

    @field_validator("gateway_store_url", mode="before")
    @classmethod
    def _store_url(cls, value: object) -> SecretStr:
        return parse_store_url(value)

    gateway_store_compact_interval: float = _seconds(
        60.0, 0.05, DAY, "how often a SQLite store's file gives back the space of delivered messages' bodies")
    # Postal's 30 days: long enough that a campaign's repeats never reach a dead mailbox, short enough that one
    # re-created (a reused address, a fixed domain) gets mail again within a month.
    gateway_suppression_expiry: float = _seconds(
        30 * DAY, 0, 3650 * DAY, "how long an automatic suppression (a hard bounce) lasts, 0 for until removed,")

    @property
    def store_url(self) -> str:
        """The store's URL, password included: hand it to the store only."""
        return self.gateway_store_url.get_secret_value()

    @property
    def shared_store(self) -> bool:
        return is_shared(self.store_url)


class QueueSettings(Subject):
    gateway_delivery: Literal["direct", "queued"] = Field(
        "direct", description="set it to direct (send before answering) or queued (store, answer, deliver later)")
    gateway_queue_workers: int = Field(
        16, ge=1, le=256, description="set it to how many messages one process delivers at once (1 to 256)")
    gateway_queue_lease: float = _seconds(30.0, 0.1, 3600, "how long a claim outlives a process that died")
    gateway_queue_backoff_min: float = _seconds(300.0, 0.01, DAY, "the first retry's delay")
    gateway_queue_backoff_max: float = _seconds(4000.0, 0.01, 7 * DAY, "the longest delay between retries")
    gateway_queue_lifetime: float = _seconds(5 * DAY, 0.1, 60 * DAY, "how long a message is retried")
    gateway_queue_max_schedule: float = _seconds(30 * DAY, 0, 365 * DAY, "how far ahead send_at may be")
    gateway_queue_poll_interval: float = _seconds(1.0, 0.01, 60, "how long an idle worker waits before it looks "
                                                  "for due messages again")
    gateway_queue_notify: bool = Field(
        True, description="set it to true (new work wakes idle workers at once: LISTEN/NOTIFY on PostgreSQL, "
                          "within the process on SQLite) or false (they wait for GATEWAY_QUEUE_POLL_INTERVAL)")
    mail_rate_limit: float | None = Field(
        None, gt=0, le=100_000,
        description="set it to the most messages per second sent upstream (fractions allowed), or leave it unset")

    @property
    def queued(self) -> bool:
        return self.gateway_delivery == "queued"


class WebhookSettings(Subject):
    gateway_webhook_url: str | None = Field(
        None, description="set it to the http:// or https:// URL that receives delivery events")
    gateway_webhook_secret: SecretStr | None = Field(
        None, description="set it to the endpoint's signing secret, whsec_ followed by base64 (several, "
                          "separated by spaces, while one replaces another)")
    gateway_webhook_backoff_min: float = _seconds(5.0, 0.01, DAY, "the first webhook retry's delay")
    gateway_webhook_timeout: float = _seconds(10.0, 0.1, 300, "how long one webhook request may take in all "
                                              "(connect, send, the whole reply)")

    @field_validator("gateway_webhook_url", "gateway_webhook_secret", mode="before")
    @classmethod
    def _webhook_blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("gateway_webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return None if value is None else check_webhook_url(value)

    @field_validator("gateway_webhook_secret")
    @classmethod
    def _whsec(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        secrets = split_secrets(value.get_secret_value())
        for position, text in enumerate(secrets, 1):
            if not _is_whsec(text):
                which = f"its secret number {position} of {len(secrets)}" if len(secrets) > 1 else "it"
                raise ValueError(f"{which} is not whsec_ followed by at least 16 bytes in base64 (A-Z, a-z, 0-9, + "
                                 "and /, nothing else); several secrets, while one is replaced, are separated by "
                                 "spaces")
        return value

    @property
    def webhook_secrets(self) -> list[str]:
        """The signing secrets: each delivery carries a signature by every one (Standard Webhooks' rotation)."""
        return [] if self.gateway_webhook_secret is None else \
            split_secrets(self.gateway_webhook_secret.get_secret_value())


def split_secrets(text: str) -> list[str]:
    """Secrets separated by spaces, as the signatures they make are in ``webhook-signature``."""
    return text.split() or [text]


def _is_whsec(text: str) -> bool:
    # The signer's own parsing decides (padded or not), so every secret accepted here signs as the endpoint's
    # verifier expects; the whsec_ form and a key of at least 16 bytes are the gateway's own rules. It skips
    # what is not base64 (a space, !, the URL alphabet's - and _) and signs with another key than the one
    # written, which a strict receiver refuses: strict base64 is the gateway's rule too. Imported here: only
    # a configured secret needs it, and without the queue extra that installs it the setting is refused so.
    with needs_extra("GATEWAY_WEBHOOK_SECRET", variable="GATEWAY_WEBHOOK_SECRET"):
        from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

    payload = text.removeprefix("whsec_")
    try:
        strict = base64.b64decode(payload + "=" * (-len(payload) % 4), validate=True)
        return text.startswith("whsec_") and len(strict) >= 16 and Webhook(text)._whsecret == strict
    except (ValueError, EmptyWebhookSecretError):  # binascii.Error is a ValueError
        return False
