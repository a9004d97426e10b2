"""The ``mail-gateway`` command: ``serve`` the HTTP API, ``send`` one message, ``check`` the configuration,
run the SMTP ingress alone (``smtpd``), deliver queued messages (``worker``), look into the queue (``queue``),
upgrade the store's schema (``db``) and make DKIM keys (``dkim``).

Each command's module is imported when the command runs (or its help is shown): most need an extra, and the
base install (``send``, ``check``, ``--version``) must start without them. A command whose extra is missing is
still listed, and running it says which extra to install.
"""

from __future__ import annotations

from importlib import import_module

import click

from mail_gateway.errors import ConfigurationError
from mail_gateway.extension import backend_names  # noqa: F401 - flask-mailman's MAIL_BACKEND names, as in an app
from mail_gateway.extras import needs_extra, require

# name: (module, its command, the extra it needs or None for the base install)
COMMANDS = {
    "serve": ("serve", "serve", "server"),
    "send": ("send", "send", None),
    "check": ("check", "check", None),
    "smtpd": ("smtpd", "smtpd", "server"),
    "worker": ("worker", "worker", "queue"),
    "queue": ("queue", "queue", "queue"),
    "db": ("db", "db", "queue"),
    "dkim": ("dkim", "dkim", "dkim"),
    "suppressions": ("suppressions", "suppressions_group", "queue"),
}


class Commands(click.Group):
    """The commands, each loaded on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute, extra = COMMANDS[cmd_name]
        feature = f"mail-gateway {cmd_name}"
        try:
            if extra is not None:
                require(extra, feature)
            with needs_extra(feature):
                return getattr(import_module(f"mail_gateway.cli.{module}"), attribute)
        except ConfigurationError as exc:  # only an extra's: the commands read no configuration on import
            return _unavailable(cmd_name, exc)


def _unavailable(name: str, missing: ConfigurationError) -> click.Command:
    """A stand-in for a command whose extra is missing: listed with it, and saying so when run (with any
    arguments, --help too)."""

    def refuse() -> None:
        raise click.ClickException(f"configuration error: {missing}")

    return click.Command(name, callback=refuse, help=f"(needs the {missing.extra} extra) {missing}",
                         short_help=f"(needs the {missing.extra} extra)", add_help_option=False,
                         context_settings={"ignore_unknown_options": True, "allow_extra_args": True})


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mail-gateway", prog_name="mail-gateway")
def main() -> None:
    """A mail gateway with pluggable backends (smtp, console, file, memory)."""
