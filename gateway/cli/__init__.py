"""The ``mail-gateway`` command: ``serve`` the HTTP API, ``send`` one message, ``check`` the configuration,
run the SMTP ingress alone (``smtpd``), deliver queued messages (``worker``), look into the queue (``queue``),
upgrade the store's schema (``db``) and make DKIM keys (``dkim``)."""

from __future__ import annotations

import click

from mail_gateway.cli.check import check
from mail_gateway.cli.db import db
from mail_gateway.cli.dkim import dkim
from mail_gateway.cli.queue import queue
from mail_gateway.cli.send import send
from mail_gateway.cli.serve import serve
from mail_gateway.cli.smtpd import smtpd
from mail_gateway.cli.suppressions import suppressions_group
from mail_gateway.cli.worker import worker
from mail_gateway.extension import backend_names  # noqa: F401 - flask-mailman's MAIL_BACKEND names, as in an app


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mail-gateway", prog_name="mail-gateway")
def main() -> None:
    """A mail gateway with pluggable backends (smtp, console, file, memory)."""


for command in (serve, send, check, smtpd, worker, queue, db, dkim):
    main.add_command(command)
main.add_command(suppressions_group, "suppressions")
