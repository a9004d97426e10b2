"""The settings of every subject in one class, read under their flat names, and the rules that join several
subjects. Each subject's own model is handed out by it (``settings.smtp``; settings/subjects.py says how and why)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import PrivateAttr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from mail_gateway.errors import ConfigurationError
from mail_gateway.settings.app_config import AppConfigSource
from mail_gateway.settings.core import CoreSettings, Subject
from mail_gateway.settings.dkim import DkimSettings
from mail_gateway.settings.flask_compat import FlaskMailSettings
from mail_gateway.settings.http import HttpApiSettings
from mail_gateway.settings.ingress import IngressSettings
from mail_gateway.settings.local import ConsoleSettings, FileSettings, MemorySettings
from mail_gateway.settings.outbox import OutboxSettings, release_relay
from mail_gateway.settings.senders import SenderSettings
from mail_gateway.settings.smtp import SmtpSettings
from mail_gateway.settings.store import QueueSettings, StoreSettings, WebhookSettings
from mail_gateway.settings.subjects import BySubject
from mail_gateway.settings.templates import TemplateSettings
from mail_gateway.settings.unsubscribe import UnsubscribeSettings

DEFAULT_BACKEND_BY_ENV = {"development": "console", "testing": "memory", "production": "smtp"}


# Settings no part of the gateway reads but the queue's workers (GATEWAY_QUEUE_LEASE also bounds idempotency keys in
# direct delivery), and the webhook sender's.
_QUEUE_WORKERS_ONLY = frozenset({"gateway_queue_workers", "gateway_queue_backoff_min", "gateway_queue_backoff_max",
                                 "gateway_queue_lifetime", "gateway_queue_max_schedule",
                                 "gateway_queue_poll_interval", "gateway_queue_notify"})
_WEBHOOKS_ONLY = frozenset({"gateway_webhook_backoff_min", "gateway_webhook_timeout"})


class GatewaySettings(BySubject, BaseSettings, CoreSettings, FileSettings, ConsoleSettings, MemorySettings,
                      SmtpSettings, HttpApiSettings, IngressSettings, OutboxSettings, FlaskMailSettings,
                      SenderSettings, StoreSettings, WebhookSettings, QueueSettings, DkimSettings,
                      TemplateSettings, UnsubscribeSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,
        allow_inf_nan=False,
    )
    # The selected backend's own settings once read (mail_gateway.settings.loading.backend_settings); kept here
    # so the backend receives what start-up validated, and copies of these settings carry it along.
    _backend_settings: tuple[str, BaseSettings] | None = PrivateAttr(None)  # (the backend's name, its settings)
    _subjects: dict[str, Subject] = PrivateAttr(default_factory=dict)  # each subject's model, once built

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        copied = super().model_copy(update=update, deep=deep)
        copied._subjects = {}  # built again from the copy's own values (queued delivery changes the SMTP ones)
        return copied

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        # A Flask app's config ranks below the environment, so a deployment can override what the code says.
        return init_settings, env_settings, dotenv_settings, AppConfigSource(settings_cls), file_secret_settings

    @model_validator(mode="after")
    def _max_emails_is_the_pool_limit(self) -> GatewaySettings:
        # Once each name was read on its own: a bad MAIL_MAX_EMAILS is refused once, under the name it was set by.
        limit = self.mail_max_emails
        if limit is not None and limit != self.mail_pool_max_messages:
            if "mail_pool_max_messages" in self.model_fields_set:
                raise ValueError("MAIL_MAX_EMAILS and MAIL_POOL_MAX_MESSAGES are two names of one setting and "
                                 "disagree; set only MAIL_POOL_MAX_MESSAGES")
            object.__setattr__(self, "mail_pool_max_messages", limit)  # frozen, and still being built
        return self

    @model_validator(mode="after")
    def _consistent(self) -> GatewaySettings:
        if self.mail_suppress_send and self.backend_named and self.backend_name != "memory":
            raise ValueError(f"MAIL_SUPPRESS_SEND is true, which keeps mail in memory, but MAIL_BACKEND (or "
                             f"MAIL_URL) names {self.backend_name}; remove one of the two")
        if self.backend_name == "smtp" and self.gateway_env == "production" and not self.smtp_server_configured:
            raise ValueError(
                "MAIL_SERVER is not set; production delivers over SMTP, so set MAIL_SERVER to the "
                "SMTP server's host name (or choose another MAIL_BACKEND)"
            )
        if self.backend_name == "smtp":
            # The outbox's releases over STARTTLS read the TLS files too, whatever the backend's own connection.
            relay = self.gateway_outbox_release_url
            self._smtp_honours_login_and_tls_files(self.outbox_enabled and bool(relay and release_relay(relay)[2]))
        if self.backend_name == "file" and self.file_path is None:
            raise ValueError("MAIL_FILE_PATH is not set; the file backend needs a writable directory")
        self._senders_name_known_clients()
        self._admins_name_known_keys()
        self._queue_consistent()
        if self.gateway_inbound_routes is not None and self.gateway_webhook_secret is None:
            raise ValueError("GATEWAY_INBOUND_ROUTES posts signed webhooks; set GATEWAY_WEBHOOK_SECRET (whsec_...) "
                             "to the key their signatures are made with")
        if self.gateway_unsubscribe_secret is not None and self.gateway_public_url is None:
            raise ValueError("GATEWAY_UNSUBSCRIBE_SECRET is set but GATEWAY_PUBLIC_URL is not; set GATEWAY_PUBLIC_URL "
                             "to the https:// address the unsubscribe links point at (or unset the secret)")
        return self

    def _admins_name_known_keys(self) -> None:
        keys = self.api_key_names
        unknown = sorted(self.admin_key_names - {name for name in keys.values() if name is not None})
        if set(unknown) & set(keys):  # the key itself instead of its name: never echoed
            raise ValueError("GATEWAY_ADMIN_KEYS lists an API key itself; list the key's name instead (name:key in "
                             "GATEWAY_API_KEYS)")
        if unknown:
            raise ValueError(f"GATEWAY_ADMIN_KEYS names the API key {unknown[0]!r}, which GATEWAY_API_KEYS does not "
                             "name; name a key there as name:key, or remove it from GATEWAY_ADMIN_KEYS")

    def _senders_name_known_clients(self) -> None:
        rules = self.sender_rules
        if rules is None:
            return
        unknown_keys = sorted(set(rules.by_key) - {n for n in self.api_key_names.values() if n is not None})
        unknown_users = sorted(set(rules.by_user) - set(self.smtp_users))
        if {*unknown_keys, *unknown_users} & {*self.api_key_names, *self.smtp_users.values()}:  # never echoed
            raise ValueError("GATEWAY_ALLOWED_SENDERS names a client by an API key or an SMTP password itself; name "
                             "it instead: key:NAME=... for the key NAME:key in GATEWAY_API_KEYS, user:NAME=... for the "
                             "user NAME of GATEWAY_SMTP_USERS")
        if unknown_keys:
            raise ValueError(f"GATEWAY_ALLOWED_SENDERS names the API key {unknown_keys[0]!r}, which GATEWAY_API_KEYS "
                             "does not name; name a key there as name:key, or fix the entry key:name=...")
        if unknown_users:
            raise ValueError(f"GATEWAY_ALLOWED_SENDERS names the SMTP user {unknown_users[0]!r}, which "
                             "GATEWAY_SMTP_USERS does not list; add the user there, or fix the entry user:name=...")

    def _queue_consistent(self) -> None:
        """Queued delivery's settings make sense only together, and some only in queued mode."""
        if not self.queued:
            for name in ("mail_rate_limit", "gateway_webhook_url", "gateway_inbound_routes"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name.upper()} needs queued delivery; set GATEWAY_DELIVERY=queued "
                                     f"(or unset {name.upper()})")
            for name in sorted(_QUEUE_WORKERS_ONLY & self.model_fields_set):  # else taken, and read by no one
                raise ValueError(f"{name.upper()} is read only by queued delivery's workers; set "
                                 f"GATEWAY_DELIVERY=queued (or unset {name.upper()})")
        if self.gateway_webhook_url is None and self.gateway_inbound_routes is None:
            for name in sorted(_WEBHOOKS_ONLY & self.model_fields_set):
                raise ValueError(f"{name.upper()} applies to webhooks, and none is set; set GATEWAY_WEBHOOK_URL or "
                                 f"GATEWAY_INBOUND_ROUTES (or unset {name.upper()})")
        if self.queued:
            for name in ("mail_retry_attempts", "mail_retry_backoff", "mail_retry_deadline"):
                if name in self.model_fields_set:
                    raise ValueError(f"{name.upper()} does not apply to queued delivery, where the queue retries "
                                     "as GATEWAY_QUEUE_BACKOFF_MIN and GATEWAY_QUEUE_BACKOFF_MAX say (each attempt "
                                     f"tries each upstream once); unset {name.upper()}")
        # Inbound routes are webhooks too: their secret may come without GATEWAY_WEBHOOK_URL.
        if (self.gateway_webhook_url is None) != (self.gateway_webhook_secret is None) and \
                not (self.gateway_inbound_routes is not None and self.gateway_webhook_url is None):
            raise ValueError("GATEWAY_WEBHOOK_URL and GATEWAY_WEBHOOK_SECRET go together; set both (signed webhooks) "
                             "or neither")
        if self.gateway_queue_backoff_min > self.gateway_queue_backoff_max:
            raise ValueError("GATEWAY_QUEUE_BACKOFF_MIN is larger than GATEWAY_QUEUE_BACKOFF_MAX; set the minimum "
                             "to at most the maximum")

    def check_http_service(self) -> None:
        """What serving the HTTP API adds to the rules: production needs API keys (or says it goes without).
        Checked when the service is built, so an app that only uses the gateway as a library never needs them."""
        if self.gateway_env == "production" and self.gateway_api_keys is None and not self.gateway_allow_anonymous:
            raise ConfigurationError(
                "GATEWAY_API_KEYS is not set; production protects /v1 with API keys, so set GATEWAY_API_KEYS "
                "to one or more keys separated by commas (or GATEWAY_ALLOW_ANONYMOUS=true to serve without)",
                variable="GATEWAY_API_KEYS")

    @property
    def backend_named(self) -> bool:
        """Whether MAIL_BACKEND or MAIL_URL chose the backend, rather than the rules below."""
        return self.mail_url is not None or self.mail_backend is not None

    @property
    def backend_name(self) -> str:
        """The backend named by MAIL_URL or MAIL_BACKEND; else memory when testing or suppressing (nothing is
        sent), smtp when MAIL_SERVER is set (configuring a server means sending to it, as in Flask-Mail and
        flask-mailman), and otherwise the default of GATEWAY_ENV (console in development)."""
        if self.mail_url is not None:
            return self.mail_url.backend
        if self.mail_backend is not None:
            return self.mail_backend
        suppress = self.mail_suppress_send
        if suppress if suppress is not None else self.gateway_env == "testing":
            return "memory"
        if self.mail_server:
            return "smtp"
        return DEFAULT_BACKEND_BY_ENV[self.gateway_env]

    @property
    def file_path(self) -> Path | None:
        """The file backend's directory: MAIL_URL's ``file://`` path, or MAIL_FILE_PATH."""
        if self.mail_url is not None and self.mail_url.file_path is not None:
            return self.mail_url.file_path
        return self.mail_file_path

    @property
    def outbox_enabled(self) -> bool:
        if self.gateway_outbox_enabled is not None:
            return self.gateway_outbox_enabled
        return self.gateway_env != "production"

    @property
    def console_format(self) -> Literal["summary", "raw"]:
        if self.mail_console_format is not None:
            return self.mail_console_format
        return "summary" if self.gateway_env == "development" else "raw"

    @property
    def console_keeps_messages(self) -> bool:
        if self.mail_console_keep is not None:
            return self.mail_console_keep
        return self.gateway_env == "development"

