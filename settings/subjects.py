"""Each subject's own settings model, handed out by ``GatewaySettings``: ``settings.smtp``, ``settings.http``...

How they are built, and why. ``GatewaySettings`` stays one flat pydantic-settings class that inherits every
subject's fields and reads each under its name of old (``MAIL_SERVER``, ``GATEWAY_MAX_MESSAGE_BYTES``) from
keyword arguments, the environment, ``.env`` and a Flask app's ``app.config``, validated there by the validators
it inherits from the subjects' classes. Each subject's model, an instance of its subject's class, is then built
from those values as they are (validated once; a ``model_copy``'s as its caller gave them, such as the SMTP
settings queued delivery derives for its workers), immutable, with ``model_fields_set`` saying which were given,
and kept: once per settings object, and again for a copy, whose values may differ.

Nested fields filled from the flat names (by a custom source or a before-validator) were the other way, but
pydantic-settings reads a nested model from one variable named after the field (JSON, or ``SMTP__MAIL_SERVER``
with a delimiter), and nesting would move what the start-up messages, the unknown-name checks and the callers
rely on: an error's location names the variable (``loc[0]``), ``model_fields_set`` and
``model_copy(update=...)`` speak the flat names (queued delivery derives the workers' SMTP settings so), and so
do the settings' readers throughout the package.

The built-in backends are each built from their subject alone (their registrations' ``subject``): the SMTP
backend from ``smtp``, console from ``console`` (its defaults, which depend on GATEWAY_ENV, resolved), file from
``file`` (its directory and the largest message it must find room for) and memory from ``memory``.
"""

from __future__ import annotations

from typing import Any, TypeVar

from mail_gateway.errors import ConfigurationError
from mail_gateway.settings.core import CoreSettings, Subject
from mail_gateway.settings.dkim import DkimSettings
from mail_gateway.settings.flask_compat import FlaskMailSettings
from mail_gateway.settings.http import HttpApiSettings
from mail_gateway.settings.ingress import IngressSettings
from mail_gateway.settings.local import ConsoleSettings, FileBackendSettings, MemorySettings
from mail_gateway.settings.outbox import OutboxSettings
from mail_gateway.settings.senders import SenderSettings
from mail_gateway.settings.smtp import SmtpSettings
from mail_gateway.settings.store import QueueSettings, StoreSettings, WebhookSettings
from mail_gateway.settings.templates import TemplateSettings
from mail_gateway.settings.unsubscribe import UnsubscribeSettings

# Each attribute of GatewaySettings that holds a subject's model, and that model's class.
SUBJECTS: dict[str, type[Subject]] = {
    "core": CoreSettings, "smtp": SmtpSettings, "http": HttpApiSettings, "ingress": IngressSettings,
    "outbox": OutboxSettings, "senders": SenderSettings, "flask_mail": FlaskMailSettings, "store": StoreSettings,
    "queue": QueueSettings, "webhooks": WebhookSettings, "console": ConsoleSettings, "memory": MemorySettings,
    "file": FileBackendSettings, "dkim": DkimSettings, "templates": TemplateSettings,
    "unsubscribe": UnsubscribeSettings,
}

S = TypeVar("S", bound=Subject)


class BySubject:
    """What ``GatewaySettings`` adds to its flat fields: one property per subject. Its values are read by name, so
    it works on any object holding the flat fields and a ``_subjects`` dict (``GatewaySettings``' private one)."""

    _subjects: dict[str, Subject]

    def _subject(self, name: str, model: type[S], **resolved: Any) -> S:
        kept = self._subjects.get(name)
        if kept is None:
            flat: Any = self
            values = {field: getattr(flat, field) for field in model.model_fields if field not in resolved}
            # Not validated again: the flat class ran these same validators on these values.
            kept = model.model_construct(flat.model_fields_set & set(model.model_fields), **values, **resolved)
            for private in model.__private_attributes__:  # drawn once (the outbox's secret): the same one
                setattr(kept, private, getattr(flat, private))
            self._subjects[name] = kept  # two threads at once build equal models: either may stay
        return kept  # type: ignore[return-value]

    @property
    def core(self) -> CoreSettings:
        return self._subject("core", CoreSettings)

    @property
    def smtp(self) -> SmtpSettings:
        return self._subject("smtp", SmtpSettings)

    @property
    def http(self) -> HttpApiSettings:
        return self._subject("http", HttpApiSettings)

    @property
    def ingress(self) -> IngressSettings:
        return self._subject("ingress", IngressSettings)

    @property
    def outbox(self) -> OutboxSettings:
        return self._subject("outbox", OutboxSettings)

    @property
    def senders(self) -> SenderSettings:
        return self._subject("senders", SenderSettings)

    @property
    def flask_mail(self) -> FlaskMailSettings:
        return self._subject("flask_mail", FlaskMailSettings)

    @property
    def store(self) -> StoreSettings:
        return self._subject("store", StoreSettings)

    @property
    def queue(self) -> QueueSettings:
        return self._subject("queue", QueueSettings)

    @property
    def webhooks(self) -> WebhookSettings:
        return self._subject("webhooks", WebhookSettings)

    @property
    def dkim(self) -> DkimSettings:
        return self._subject("dkim", DkimSettings)

    @property
    def templates(self) -> TemplateSettings:
        return self._subject("templates", TemplateSettings)

    @property
    def unsubscribe(self) -> UnsubscribeSettings:
        return self._subject("unsubscribe", UnsubscribeSettings)

    @property
    def memory(self) -> MemorySettings:
        return self._subject("memory", MemorySettings)

    @property
    def console(self) -> ConsoleSettings:
        """The console backend's settings, its format and whether it keeps a copy resolved for GATEWAY_ENV."""
        flat: Any = self
        return self._subject("console", ConsoleSettings, mail_console_format=flat.console_format,
                             mail_console_keep=flat.console_keeps_messages)

    @property
    def file(self) -> FileBackendSettings:
        """The file backend's settings; ``ConfigurationError`` when no directory is set."""
        flat: Any = self
        if flat.file_path is None:
            raise ConfigurationError("MAIL_FILE_PATH is not set; the file backend needs a writable directory",
                                     variable="MAIL_FILE_PATH")
        largest, setting = max((flat.gateway_max_message_bytes, "GATEWAY_MAX_MESSAGE_BYTES"),
                               (flat.gateway_smtp_max_message_bytes, "GATEWAY_SMTP_MAX_MESSAGE_BYTES"))
        return self._subject("file", FileBackendSettings, mail_file_path=flat.file_path,
                             largest_message_bytes=largest, largest_message_setting=setting,
                             max_age=flat.gateway_outbox_max_age)

