"""The gateway installed as a library into a Flask project that has its own ``settings`` and ``backends``.

A project's own module names must never collide with the gateway's: the distribution installs only
``mail_gateway``, and its pytest plugin (loaded by every pytest run once installed) imports nothing until used.
This builds the wheel, installs it with pytest into a fresh virtual environment, and runs the project's tests.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PROJECT = {
    "settings.py": """
        GREETING = "Hello from the project's own settings"
        """,
    "backends/__init__.py": """
        NAME = "the project's own backends package"
        """,
    "app.py": """
        from flask import Flask
        from flask_mailman import EmailMessage

        import backends
        import settings
        from mail_gateway import MailGateway


        def create_app():
            app = Flask(__name__)
            MailGateway(app)

            @app.post("/signup")
            def signup():
                EmailMessage(settings.GREETING, backends.NAME, "app@example.com", ["ann@example.com"]).send()
                return "ok"

            return app
        """,
    "tests/test_signup.py": """
        import backends
        import settings
        from app import create_app


        def test_the_project_modules_are_its_own():
            assert settings.GREETING.startswith("Hello") and backends.NAME.startswith("the project")


        def test_signup_sends_through_the_gateway(mail_outbox):
            assert create_app().test_client().post("/signup").status_code == 200
            mail_outbox.assert_sent(to="ann@example.com", subject=settings.GREETING)
        """,
}


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the gateway's wheel and pytest, and nothing of this checkout."""
    base = tmp_path_factory.mktemp("installed")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(base / "dist"),
                            str(ROOT)], check=True, capture_output=True, text=True)
    (base / "build.log").write_text(built.stdout + built.stderr)
    [wheel] = (base / "dist").glob("mail_gateway-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(base / "venv")], check=True)
    python = base / "venv" / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(wheel), "pytest"], check=True,
                   capture_output=True)
    return python


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name, text in PROJECT.items():
        path = tmp_path / "project" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return tmp_path / "project"


def test_building_the_package_warns_of_nothing(environment: Path) -> None:
    # `make run` installs the same way; setuptools' "Package would be ignored" notices once greeted every newcomer.
    log = (environment.parents[2] / "build.log").read_text()
    assert "Warning" not in log and "would be ignored" not in log, log


def test_the_wheel_installs_only_mail_gateway(environment: Path) -> None:
    # Files outside site-packages (the console script, as ../../../bin/mail-gateway) and the metadata aside.
    code = ("import importlib.metadata as m\n"
            "tops = {f.parts[0] for f in m.files('mail-gateway')}\n"
            "print(sorted(t for t in tops - {'..'} if not t.endswith('.dist-info')))")
    done = subprocess.run([str(environment), "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['mail_gateway']"


def test_the_projects_own_pytest_runs_with_the_gateway_installed(environment: Path, project: Path) -> None:
    done = subprocess.run([str(environment), "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


def test_the_project_imports_the_gateway_beside_its_own_modules(environment: Path, project: Path) -> None:
    code = ("import settings, backends\nfrom mail_gateway import MailGateway, GatewaySettings\n"
            "print(settings.__file__, backends.__file__, MailGateway.__module__, GatewaySettings.__module__)")
    done = subprocess.run([str(environment), "-c", code], cwd=project, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    own_settings, own_backends, extension, settings_module = done.stdout.split()
    assert Path(own_settings) == project / "settings.py" and Path(own_backends) == project / "backends/__init__.py"
    assert (extension, settings_module) == ("mail_gateway.extension.core", "mail_gateway.settings.gateway")
