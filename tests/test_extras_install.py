"""The distribution as users install it: the wheel and the sdist build without warnings, and the wheel installed
into fresh virtual environments (by uv: seconds each once its cache holds the packages) works — the base alone,
and with each extra — with nothing of this checkout importable.

``test_extras.py`` checks the same behaviour quickly in this checkout's environment; this proves the declared
dependencies are what each part needs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from ingress_support import wait_until
from postgres_server import PostgresServer
from process_support import stop_and_read
from smtp_server import HOST, free_port

from mail_gateway.extras import EXTRAS

ROOT = Path(__file__).resolve().parent.parent
INSTALL_SECONDS = 300  # a bound for a cold cache on a slow link, not an expectation
UV = [sys.executable, "-m", "uv"]


def clean_env(**values: str) -> dict[str, str]:
    """This environment without the gateway's settings and anything that would reach the checkout."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MAIL_", "GATEWAY_")) and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, **values}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The wheel (built from the sdist, as ``python -m build`` does) and what the build printed."""
    out = tmp_path_factory.mktemp("dist")
    # Byte-compiling switched off by the environment is reported as a warning that is not the package's.
    env = {k: v for k, v in clean_env().items() if k != "PYTHONDONTWRITEBYTECODE"}
    done = subprocess.run([sys.executable, "-m", "build", "--installer", "uv", "--outdir", str(out), str(ROOT)],
                          capture_output=True, text=True, env=env, timeout=INSTALL_SECONDS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(list(out.glob("mail_gateway-*.tar.gz"))) == 1
    [wheel] = out.glob("mail_gateway-*.whl")
    return wheel, done.stdout + done.stderr


@pytest.fixture(scope="module")
def install(built: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``install("queue")``: the python of a fresh environment holding the wheel with that extra ("" for the
    base) and pytest; each made once."""
    made: dict[str, Path] = {}

    def make(extra: str) -> Path:
        if extra not in made:
            venv = tmp_path_factory.mktemp(f"venv-{extra or 'base'}")
            subprocess.run([*UV, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True,
                           env=clean_env(), timeout=INSTALL_SECONDS)
            python = venv / "bin" / "python"
            requirement = f"mail-gateway[{extra}] @ {built[0].as_uri()}" if extra else str(built[0])
            done = subprocess.run([*UV, "pip", "install", "--quiet", "--python", str(python), requirement, "pytest"],
                                  capture_output=True, text=True, env=clean_env(), timeout=INSTALL_SECONDS)
            assert done.returncode == 0, done.stderr
            made[extra] = python
        return made[extra]

    return make


def run(python: Path, args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(python), *args], capture_output=True, text=True, cwd=cwd, env=clean_env(**env),
                          timeout=120)


def script(python: Path, code: str, cwd: Path, **env: str) -> str:
    done = run(python, ["-c", textwrap.dedent(code)], cwd, **env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


def command(python: Path, args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(python.parent / "mail-gateway"), *args], capture_output=True, text=True, cwd=cwd,
                          env=clean_env(**env), timeout=120)


def test_the_wheel_and_the_sdist_build_without_warnings(built: tuple[Path, str]) -> None:
    log = built[1]
    assert "warning" not in log.lower() and "would be ignored" not in log, log


LIBRARY = """
    import importlib.util
    from flask import Flask
    from flask_mailman import EmailMessage
    from mail_gateway import MailGateway
    app = Flask(__name__)
    app.config.update(MAIL_BACKEND="memory", MAIL_DEFAULT_SENDER="app@example.com")
    mail = MailGateway(app)
    with app.app_context():
        EmailMessage("Hello", "Body", to=["ann@example.com"]).send()
    print([m.subject for m in mail.outbox], sorted(n for n in OPTIONAL if importlib.util.find_spec(n)))
"""
FIXTURE_TEST = """
    from flask import Flask
    from flask_mailman import EmailMessage
    from mail_gateway import MailGateway


    def test_signup_mail(mail_outbox):
        app = Flask(__name__)
        MailGateway(app)
        with app.app_context():
            EmailMessage("Welcome", "Hi", "app@example.com", ["ann@example.com"]).send()
        mail_outbox.assert_sent(to="ann@example.com", subject="Welcome")
"""


def test_the_base_install_has_the_library_the_fixture_and_the_basic_commands(install, tmp_path: Path) -> None:
    python = install("")
    # Sent, and none of the optional packages installed.
    assert script(python, LIBRARY.replace("OPTIONAL", repr(sorted(EXTRAS))), tmp_path) == "['Hello'] []"
    (tmp_path / "test_signup.py").write_text(textwrap.dedent(FIXTURE_TEST))
    tested = run(python, ["-m", "pytest", "-q", "-p", "no:cacheprovider", "test_signup.py"], tmp_path)
    assert tested.returncode == 0 and "1 passed" in tested.stdout, tested.stdout + tested.stderr
    version = command(python, ["--version"], tmp_path)
    assert version.stdout.strip() == "mail-gateway, version 0.1.0", version
    sent = command(python, ["send", "--from", "app@example.com", "--to", "ann@example.com", "--text", "Hi"],
                   tmp_path, MAIL_BACKEND="console")
    assert sent.returncode == 0 and "accepted ann@example.com" in sent.stderr, sent


@pytest.mark.parametrize(("args", "env", "said"), [
    (["serve"], {}, "mail-gateway serve needs the server extra: pip install 'mail-gateway[server]'"),
    (["send", "--from", "app@example.com", "--to", "ann@example.com", "--text", "Hi"], {"GATEWAY_DELIVERY": "queued"},
     "GATEWAY_DELIVERY=queued needs the queue extra: pip install 'mail-gateway[queue]'"),
    (["check"], {"GATEWAY_DKIM_KEYS": "example.com:s1:/nonexistent.pem"},
     "GATEWAY_DKIM_KEYS needs the dkim extra: pip install 'mail-gateway[dkim]'"),
])
def test_the_base_install_names_the_extra_a_feature_needs(install, tmp_path: Path, args: list[str],
                                                          env: dict[str, str], said: str) -> None:
    done = command(install(""), args, tmp_path, MAIL_BACKEND="console", **env)
    assert done.returncode == 1 and done.stderr.strip() == f"Error: configuration error: {said}", done


def delivered(out: Path) -> list[Path]:
    """The messages the file backend has finished writing: it writes each to a dot-file first, then renames it."""
    return [path for path in out.glob("*.eml") if not path.name.startswith(".")] if out.exists() else []


def test_the_queue_extra_stores_and_delivers_queued_mail_on_sqlite(install, tmp_path: Path) -> None:
    python, out = install("queue"), tmp_path / "out"
    env = {"GATEWAY_DELIVERY": "queued", "GATEWAY_STORE_URL": "sqlite:///store.sqlite3", "MAIL_BACKEND": "file",
           "MAIL_FILE_PATH": str(out)}
    sent = command(python, ["send", "--from", "app@example.com", "--to", "ann@example.com", "--subject", "Queued",
                            "--text", "Body"], tmp_path, **env)
    assert sent.returncode == 0 and "queued" in sent.stderr, sent
    assert (tmp_path / "store.sqlite3").exists() and not any(out.iterdir())  # stored, not yet delivered
    worker = subprocess.Popen([str(python.parent / "mail-gateway"), "worker"], cwd=tmp_path, env=clean_env(**env),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: bool(delivered(out)), "the worker delivers the message", timeout=60)
    finally:
        stop_and_read(worker, timeout=30)
    [written] = delivered(out)
    assert "Subject: Queued" in written.read_text()


def test_the_server_extra_serves_the_http_api_over_a_socket(install, tmp_path: Path) -> None:
    python, port = install("server"), free_port()
    with open(tmp_path / "serve.log", "w+") as log:
        process = subprocess.Popen([str(python.parent / "mail-gateway"), "serve", "--port", str(port)], cwd=tmp_path,
                                   env=clean_env(GATEWAY_ENV="development"), stdout=log, stderr=subprocess.STDOUT)

        def answers(path: str) -> bool:
            if process.poll() is not None:
                log.seek(0)
                raise AssertionError(f"serve exited:\n{log.read()}")
            try:
                with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=5) as response:
                    return response.status == 200
            except OSError:
                return False

        try:
            wait_until(lambda: answers("/healthz"), "serve answers /healthz", timeout=60)
            assert answers("/readyz")
        finally:
            stop_and_read(process, timeout=30)


def test_the_postgres_extra_opens_a_store_on_postgresql(install, postgres: PostgresServer, tmp_path: Path) -> None:
    python, url = install("postgres"), postgres.create_database()
    upgraded = command(python, ["db", "upgrade"], tmp_path, GATEWAY_STORE_URL=url)
    assert upgraded.returncode == 0, upgraded
    checked = command(python, ["check"], tmp_path, GATEWAY_STORE_URL=url, GATEWAY_DELIVERY="queued",
                      MAIL_BACKEND="console")
    assert checked.returncode == 0 and f"store postgresql://postgres@{HOST}:" in checked.stdout, checked


SIGNED = """
    import os
    from pathlib import Path
    import dkim
    from flask import Flask
    from flask_mailman import EmailMessage
    from mail_gateway import MailGateway
    app = Flask(__name__)
    app.config.update(MAIL_BACKEND="file", MAIL_FILE_PATH="out", GATEWAY_DKIM_KEYS="example.com:s1:s1.key")
    MailGateway(app)
    with app.app_context():
        EmailMessage("Signed", "Body", "app@example.com", ["ann@example.com"]).send()
    [written] = Path("out").iterdir()
    # Verified against the record keygen said to publish, handed to dkimpy in place of a DNS lookup.
    print(dkim.verify(written.read_bytes(), dnsfunc=lambda name, timeout=5: os.environ["RECORD"].encode()))
"""


def test_the_dkim_extra_makes_keys_and_signs(install, tmp_path: Path) -> None:
    python = install("dkim")
    made = command(python, ["dkim", "keygen", "example.com", "s1", "--out", "s1.key"], tmp_path)
    assert made.returncode == 0 and made.stdout.startswith("s1._domainkey.example.com. IN TXT "), made
    record = "".join(re.findall(r'"([^"]*)"', made.stdout))
    assert script(python, SIGNED, tmp_path, RECORD=record) == "True"


def test_the_templates_extra_renders_a_template_files_html(install, tmp_path: Path) -> None:
    python = install("templates")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "welcome.subject").write_text("Welcome {{ name }}")
    (tmp_path / "templates" / "welcome.html").write_text("<style>p { color: red }</style><p>Hi {{ name }}</p>")
    sent = command(python, ["send", "--from", "app@example.com", "--to", "ann@example.com", "--template", "welcome",
                            "--var", "name=Ann"], tmp_path, MAIL_BACKEND="console", GATEWAY_TEMPLATES_DIR="templates")
    assert sent.returncode == 0, sent
    # The CSS inlined into the HTML part, and a text part made from it: the two things the extra does.
    assert '<p style="color: red;">Hi Ann</p>' in sent.stdout and "\n\nHi Ann\n" in sent.stdout, sent.stdout
