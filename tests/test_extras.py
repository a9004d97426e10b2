"""The base install (``pip install mail-gateway``) and its extras, checked in this checkout's environment.

Each case runs in a fresh interpreter where the optional packages cannot be imported (``sys.modules[name] =
None`` makes ``import name`` raise ``ModuleNotFoundError`` as if the package were not installed): the library,
the four backends, the pytest fixture and the basic commands work without them, and a feature whose extra is
missing stops start-up with one line naming the extra to install. ``test_extras_install.py`` checks the same
with the built wheel in fresh virtual environments.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mail_gateway.extras import EXTRAS

ROOT = Path(__file__).resolve().parent.parent
# Every optional top-level package, by the extra that installs it.
OPTIONAL = sorted(EXTRAS)

LIBRARY = """
    from flask import Flask
    from flask_mailman import EmailMessage
    from mail_gateway import MailGateway
    app = Flask(__name__)
    app.config.update(MAIL_BACKEND="memory", MAIL_DEFAULT_SENDER="app@example.com")
    mail = MailGateway(app)
    with app.app_context():
        sent = EmailMessage("Hello", "Body", to=["ann@example.com"]).send()
        outbox = [(m.subject, m.to) for m in mail.outbox]
    import mail_gateway.testing.captured  # what the mail_outbox fixture is built from
    report = {"sent": sent, "outbox": outbox}
"""


PRELUDE = """
import json, os, sys
for _name in json.loads(os.environ["BLOCKED"]):
    sys.modules[_name] = None
"""
EPILOGUE = """
optional = set(json.loads(os.environ["OPTIONAL"]))
loaded = sorted({m.split('.')[0] for m in sys.modules if sys.modules[m] is not None} & optional)
print(json.dumps({"report": report, "loaded": loaded}))
"""


def run_without(names: list[str], code: str, tmp_path: Path, env: dict[str, str] | None = None) -> dict:
    """Run ``code`` (which sets ``report``) where ``names`` cannot be imported; the report, and which optional
    packages were imported after all."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MAIL_", "GATEWAY_"))}
    clean |= {"BLOCKED": json.dumps(names), "OPTIONAL": json.dumps(OPTIONAL), **(env or {})}
    script = PRELUDE + textwrap.dedent(code) + EPILOGUE
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env=clean)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_library_sends_without_any_optional_package(tmp_path: Path) -> None:
    found = run_without(OPTIONAL, LIBRARY, tmp_path)
    assert found["report"] == {"sent": 1, "outbox": [["Hello", ["ann@example.com"]]]}
    assert found["loaded"] == []
    # Nothing was stored: without the queue extra there is no store.
    assert list(tmp_path.iterdir()) == []


def cli(args: list[str]) -> str:
    return f"""
        from click.testing import CliRunner
        from mail_gateway.cli import main
        result = CliRunner().invoke(main, {args!r})
        report = [result.exit_code, result.output]
    """


def test_the_basic_commands_work_without_any_optional_package(tmp_path: Path) -> None:
    version = run_without(OPTIONAL, cli(["--version"]), tmp_path)["report"]
    assert version[0] == 0 and version[1].startswith("mail-gateway, version "), version
    sent = run_without(OPTIONAL, cli(["send", "--from", "app@example.com", "--to", "ann@example.com", "--text",
                                      "Body"]), tmp_path, {"MAIL_BACKEND": "console"})["report"]
    assert sent[0] == 0 and "accepted ann@example.com" in sent[1], sent
    checked = run_without(OPTIONAL, cli(["check"]), tmp_path, {"MAIL_BACKEND": "console"})["report"]
    assert checked[0] == 0, checked


@pytest.mark.parametrize(("env", "args", "said"), [
    ({"GATEWAY_DELIVERY": "queued"}, ["check"],
     "GATEWAY_DELIVERY=queued needs the queue extra: pip install 'mail-gateway[queue]'"),
    ({}, ["serve"], "mail-gateway serve needs the server extra: pip install 'mail-gateway[server]'"),
    ({}, ["smtpd"], "mail-gateway smtpd needs the server extra: pip install 'mail-gateway[server]'"),
    ({}, ["worker"], "mail-gateway worker needs the queue extra: pip install 'mail-gateway[queue]'"),
    ({}, ["db", "upgrade"], "mail-gateway db needs the queue extra: pip install 'mail-gateway[queue]'"),
    # The secret's check imported the signer while the settings were read: a ModuleNotFoundError traceback.
    ({"GATEWAY_WEBHOOK_SECRET": "whsec_" + "A" * 24}, ["check"],
     "GATEWAY_WEBHOOK_SECRET needs the queue extra: pip install 'mail-gateway[queue]'"),
    ({}, ["dkim", "keygen", "example.com", "s1"],
     "mail-gateway dkim needs the dkim extra: pip install 'mail-gateway[dkim]'"),
])
def test_a_command_whose_extra_is_missing_names_it(tmp_path: Path, env: dict[str, str], args: list[str],
                                                   said: str) -> None:
    code, output = run_without(OPTIONAL, cli(args), tmp_path, env)["report"]
    assert code == 1 and output.strip() == f"Error: configuration error: {said}", output


@pytest.mark.parametrize(("config", "variable", "said"), [
    ({"GATEWAY_DELIVERY": "queued"}, "GATEWAY_DELIVERY",
     "GATEWAY_DELIVERY=queued needs the queue extra: pip install 'mail-gateway[queue]'"),
    ({"GATEWAY_STORE_URL": "sqlite:///store.db"}, "GATEWAY_STORE_URL",
     "GATEWAY_STORE_URL needs the queue extra: pip install 'mail-gateway[queue]'"),
    ({"GATEWAY_DKIM_KEYS": "example.com:s1:/nonexistent/key.pem"}, "GATEWAY_DKIM_KEYS",
     "GATEWAY_DKIM_KEYS needs the dkim extra: pip install 'mail-gateway[dkim]'"),
    ({"GATEWAY_TEMPLATES_DIR": "."}, "GATEWAY_TEMPLATES_DIR",
     "GATEWAY_TEMPLATES_DIR needs the templates extra: pip install 'mail-gateway[templates]'"),
    ({"GATEWAY_WEBHOOK_SECRET": "whsec_" + "A" * 24}, "GATEWAY_WEBHOOK_SECRET",
     "GATEWAY_WEBHOOK_SECRET needs the queue extra: pip install 'mail-gateway[queue]'"),
])
def test_a_library_setting_whose_extra_is_missing_stops_start_up(tmp_path: Path, config: dict[str, str],
                                                                 variable: str, said: str) -> None:
    code = f"""
        from flask import Flask
        from mail_gateway import MailGateway
        from mail_gateway.errors import ConfigurationError
        app = Flask(__name__)
        app.config.update(MAIL_BACKEND="memory", **{config!r})
        try:
            MailGateway(app)
            report = None
        except ConfigurationError as exc:
            report = [str(exc), exc.variable, exc.extra]
    """
    extra = said.split(" extra")[0].rsplit(" ", 1)[1]
    assert run_without(OPTIONAL, code, tmp_path)["report"] == [said, variable, extra]


def test_a_postgresql_store_without_the_postgres_extra_names_it(tmp_path: Path) -> None:
    absent = [name for name in OPTIONAL if EXTRAS[name] == "postgres"]
    code = """
        from click.testing import CliRunner
        from mail_gateway.cli import main
        result = CliRunner().invoke(main, ["check"])
        report = [result.exit_code, result.output]
    """
    env = {"GATEWAY_DELIVERY": "queued", "GATEWAY_STORE_URL": "postgresql://gateway:pw-1234@127.0.0.1:9/mail"}
    exit_code, output = run_without(absent, code, tmp_path, env)["report"]
    said = "a PostgreSQL GATEWAY_STORE_URL needs the postgres extra: pip install 'mail-gateway[postgres]'"
    assert exit_code == 1 and said in output and "pw-1234" not in output, output


def test_every_extra_is_declared_and_all_has_them_all() -> None:
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(EXTRAS.values()) <= set(declared)
    assert declared["all"] == [f"mail-gateway[{','.join(sorted(set(EXTRAS.values())))}]"]


def test_the_app_factory_without_the_server_extra_names_it(tmp_path: Path) -> None:
    code = """
        from mail_gateway.errors import ConfigurationError
        try:
            from mail_gateway import create_app
            report = None
        except ConfigurationError as exc:
            report = [str(exc), exc.extra]
    """
    said = "mail_gateway.create_app (the HTTP API) needs the server extra: pip install 'mail-gateway[server]'"
    assert run_without(OPTIONAL, code, tmp_path)["report"] == [said, "server"]
