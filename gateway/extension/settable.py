"""Run-time changes of the settings flask-mailman's ``Mail`` exposes as attributes (``mail.port = 2525``).

An assignment is validated as the environment is (the settings are loaded again with the new value) and changes
the connections made after it: the app's sender, when its backend uses that setting, and the kept senders of
named backends (``get_connection('smtp')``) are built anew; connections already handed out keep theirs. With
queued delivery the delivery workers keep the sender they started with, so a change to their backend is refused.

``ssl_keyfile`` and ``ssl_certfile`` are one pair set by two assignments, in either order: a half-set pair is held
(``held``) until its other half arrives, and connections asked for meanwhile are refused (``refuse_half_pair``)
with the message the environment's validation gives.

``debug`` and ``use_localtime`` are no settings the gateway can change (``refuse_fixed``): it never prints the SMTP
conversation, and always writes the local time.
"""

from __future__ import annotations

from typing import Any

from mail_gateway.assembly import build_sender
from mail_gateway.errors import ConfigurationError
from mail_gateway.extension.connection_senders import smtp_base
from mail_gateway.runtime import Runtime
from mail_gateway.sending import Sender
from mail_gateway.settings import GatewaySettings, load_settings

_PAIR = ("mail_ssl_keyfile", "mail_ssl_certfile")
_SMTP = {"mail_server", "mail_port", "mail_username", "mail_password", "mail_use_tls", "mail_use_ssl",
         "mail_timeout", "mail_ssl_keyfile", "mail_ssl_certfile", "mail_pool_max_messages"}


def _uses(backend: str, setting: str) -> bool:
    return (backend == "smtp" and setting in _SMTP) or (backend == "file" and setting == "mail_file_path")


def _half_pair(settings: Any, held: dict[str, Any]) -> bool:
    pair = {name: held.get(name, getattr(settings, name)) for name in _PAIR}
    return pair["mail_ssl_keyfile"] is not None and pair["mail_ssl_certfile"] is None


def refuse_half_pair(state: Runtime, held: dict[str, Any]) -> None:
    """Raise the settings' own ``ConfigurationError`` while ``held`` keeps a half-set client certificate pair."""
    if held:
        values = {name: getattr(state.settings, name) for name in state.settings.model_fields_set}
        load_settings(_env_file=None, **{**values, **held})


def change_setting(state: Runtime, attribute: str, setting: str, value: Any, held: dict[str, Any]) -> None:
    """Set ``setting`` (``mail.<attribute>``) to ``value`` for the connections made from now on; raises
    ``ConfigurationError`` naming the setting when the new value cannot work."""
    if setting not in _PAIR:
        _apply(state, attribute, {setting: value})
        return
    pair = {**held, setting: value}
    if _half_pair(state.settings, pair):
        held.update(pair)  # applications set the key before the certificate (or the reverse) in two assignments
        return
    _apply(state, attribute, pair)
    held.clear()  # only once applied: a refused half leaves the pair as it was


def _apply(state: Runtime, attribute: str, changes: dict[str, Any]) -> None:
    while True:
        settings = state.settings
        changed, sender = _changed(state, attribute, changes, settings)
        # Swapped only if no other change came since ``settings`` were read (two threads assigning at once): else
        # made again on top of it, rather than undoing it. The alternates using the setting are decided as the
        # runtime swaps, so that one another thread built from the old settings meanwhile is replaced too.
        if state.reconfigure(changed, sender, stale=lambda name: any(_uses(name, setting) for setting in changes),
                             read=settings):
            return
        if sender is not None:
            sender.close()


def _changed(state: Runtime, attribute: str, changes: dict[str, Any],
             settings: GatewaySettings) -> tuple[GatewaySettings, Sender | None]:
    """``settings`` with ``changes``, validated, and the app's new sender when its backend uses them."""
    variable = next(iter(changes)).upper()
    # What was set (environment, app.config), not every default, as for a connection's own settings.
    values = {name: getattr(settings, name) for name in settings.model_fields_set}
    if any(setting in _SMTP for setting in changes):
        values.update(smtp_base(settings))  # a MAIL_URL of one server becomes the settings this one changes
    values.update(changes)
    # None unsets a setting (its default applies), as flask-mailman's None means "not configured".
    values = {name: value for name, value in values.items() if not (name in changes and value is None)}
    try:
        changed = load_settings(_env_file=None, **values)
    except ConfigurationError as exc:
        raise ConfigurationError(f"mail.{attribute} = ...: {exc}", variable=exc.variable) from exc
    rebuild = changed.backend_name != settings.backend_name or any(
        _uses(changed.backend_name, setting) for setting in changes)
    if rebuild and state.sender.spool is not None:
        raise ConfigurationError(f"mail.{attribute} cannot change the backend of queued delivery, whose delivery "
                                 f"workers keep the sender they started with; set {variable} in app.config or "
                                 "the environment before MailGateway(app)", variable=variable)
    return changed, build_sender(changed, store=state.store)[0] if rebuild else None


def refuse_fixed(attribute: str, value: Any) -> None:
    """``mail.debug`` and ``mail.use_localtime``, which stay as they are: off is what ``debug`` is, so setting it
    off is allowed; anything else raises, saying why."""
    if attribute == "debug":
        if value:
            raise ConfigurationError("mail.debug = ...: the gateway does not print the SMTP conversation; every "
                                     "delivery is logged on the mail_gateway.delivery logger", variable="MAIL_DEBUG")
        return
    raise AttributeError(f"{attribute} is fixed: the gateway always writes the Date in local time with its offset, "
                         "the same instant a UTC Date names")
