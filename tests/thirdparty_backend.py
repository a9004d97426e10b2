"""A backend as a separate package ships it: its own settings (``ACME_*``), its own ``MAIL_URL`` scheme
(``acme://region``), and a registration that the package names in its ``mail_gateway.backends`` entry point."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import SplitResult, unquote

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from mail_gateway.backends.base import EmailBackend
from mail_gateway.mail.rendering import RenderedMessage
from mail_gateway.mail.result import SendResult, all_accepted
from mail_gateway.settings.registration import BackendRegistration

# Every AcmeBackend built, so a test can look at the one the gateway built from the environment.
built: list[AcmeBackend] = []


class AcmeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ACME_")

    token: SecretStr = Field(min_length=8, description="set it to the API token Acme issued (8 characters or more)")
    region: Literal["eu", "us"] = Field("us", description="set it to eu or us")


class AcmeBackend(EmailBackend):
    name = "acme"

    def __init__(self, settings: AcmeSettings) -> None:
        super().__init__(settings)
        self.acme = settings
        self.received: list[RenderedMessage] = []
        built.append(self)

    def deliver(self, message: RenderedMessage) -> SendResult:
        self.received.append(message)
        return all_accepted(message.message_id, self.name, message.recipients)


def _from_url(url: SplitResult) -> Mapping[str, Any]:
    if url.port is not None or url.path not in ("", "/") or url.query:
        raise ValueError("acme:// takes only a region, e.g. acme://eu")
    values = {"region": url.hostname} if url.hostname else {}
    return {**values, "token": unquote(url.username)} if url.username else values  # acme://TOKEN@eu


ACME = BackendRegistration(name="acme", backend=AcmeBackend, schemes=("acme",), settings=AcmeSettings,
                           url_values=_from_url)


class GatewayPrefixedSettings(BaseSettings):
    """Settings of a backend that chose a ``GATEWAY_`` prefix (an own prefix, like ``ACME_``, is better)."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_BEACON_")

    channel: str = Field("main", description="set it to the channel's name")


class BeaconBackend(EmailBackend):
    name = "beacon"

    def deliver(self, message: RenderedMessage) -> SendResult:
        return all_accepted(message.message_id, self.name, message.recipients)


BEACON = BackendRegistration(name="beacon", backend=BeaconBackend, settings=GatewayPrefixedSettings)
