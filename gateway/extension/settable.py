"""Run-time changes of the settings flask-mailman's ``Mail`` exposes as attributes (``mail.port = 2525``).

An assignment is validated as the environment is (the settings are loaded again with the new value) and changes
the connections made after it: the app's sender, when its backend uses that setting, and the kept senders of
named backends (``get_connection('smtp')``) are built anew; connections already handed out keep theirs. With
queued delivery the delivery workers keep the sender they started with, so a change to their backend is refused.
"""

from __future__ import annotations

from typing import Any

from mail_gateway.assembly import build_sender
from mail_gateway.errors import ConfigurationError
from mail_gateway.extension.connection_senders import smtp_base
from mail_gateway.runtime import Runtime
from mail_gateway.settings import load_settings

_SMTP = {"mail_server", "mail_port", "mail_username", "mail_password", "mail_use_tls", "mail_use_ssl",
         "mail_timeout", "mail_ssl_keyfile", "mail_ssl_certfile", "mail_pool_max_messages"}


def _uses(backend: str, setting: str) -> bool:
    return (backend == "smtp" and setting in _SMTP) or (backend == "file" and setting == "mail_file_path")


def change_setting(state: Runtime, attribute: str, setting: str, value: Any) -> None:
    """Set ``setting`` (``mail.<attribute>``) to ``value`` for the connections made from now on; raises
    ``ConfigurationError`` naming the setting when the new value cannot work."""
    settings = state.settings
    variable = setting.upper()
    # What was set (environment, app.config), not every default, as for a connection's own settings.
    values = {name: getattr(settings, name) for name in settings.model_fields_set}
    if setting in _SMTP:
        values.update(smtp_base(settings))  # a MAIL_URL of one server becomes the settings this one changes
    values[setting] = value
    try:
        changed = load_settings(_env_file=None, **values)
    except ConfigurationError as exc:
        raise ConfigurationError(f"mail.{attribute} = ...: {exc}", variable=exc.variable) from exc
    rebuild = changed.backend_name != settings.backend_name or _uses(changed.backend_name, setting)
    if rebuild and state.sender.spool is not None:
        raise ConfigurationError(f"mail.{attribute} cannot change the backend of queued delivery, whose delivery "
                                 f"workers keep the sender they started with; set {variable} in app.config or "
                                 "the environment before MailGateway(app)", variable=variable)
    sender = build_sender(changed, store=state.store)[0] if rebuild else None
    state.reconfigure(changed, sender, stale=[name for name in state.alternates if _uses(name, setting)])
