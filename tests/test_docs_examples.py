"""The examples in the documentation run: every fenced Python example of README.md, CONTRIBUTING.md and docs/*.md,
and the shell examples marked to run against a server.

An example is steered by HTML comments right above its fence, visible in the Markdown source only:
``<!-- not run: REASON -->`` leaves it out (a reason is required), ``<!-- setup: CODE -->`` runs Python before it,
``<!-- check: CODE -->`` runs Python after it (in the example's namespace; for a shell example, ``output`` holds
what it printed), and ``<!-- run against: ... -->`` runs a shell example against a real ``mail-gateway serve`` in
development with ``MAIL_DEFAULT_SENDER`` set (its port in place of 8000), or a Python example naming
``mail-gateway smtpd`` against a real SMTP ingress (its port in place of 1025). Each example runs in a process of its
own, in an empty directory, with ``GATEWAY_ENV=testing`` and none of the caller's ``MAIL_*``/``GATEWAY_*``
variables, so none leaves state behind (a registered pipeline step, a backend) for the next.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ingress_support import wait_until
from process_support import Process, gateway_env
from smtp_server import HOST, free_port

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
DIRECTIVE = re.compile(r"<!--\s*(not run|setup|check|run against):((?:(?!-->).)*)-->\s*\Z", re.S)
RUN = {"python", "py"}
SHELL = {"sh", "bash", "shell", "console"}
TIMEOUT = 120  # seconds for one example's process: a bound for a hung example, never a measure of speed


@dataclass(frozen=True)
class Example:
    source: Path
    line: int
    language: str
    code: str
    directives: dict[str, str]

    @property
    def name(self) -> str:
        return f"{self.source.relative_to(ROOT)}:{self.line}"


def _directives(before: str) -> dict[str, str]:
    """The comments stacked right above a fence, nearest last."""
    found: dict[str, str] = {}
    while match := DIRECTIVE.search(before):
        found[match.group(1)] = match.group(2).strip()
        before = before[:match.start()]
    return found


def examples() -> Iterator[Example]:
    for source in SOURCES:
        if not source.exists():
            continue
        text = source.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            language = match.group(1).lower()
            if language in RUN | SHELL:
                line = text.count("\n", 0, match.start()) + 1
                yield Example(source, line, language, match.group(2), _directives(text[:match.start()]))


ALL = list(examples())
PYTHON = [example for example in ALL if example.language in RUN]
SERVED = [example for example in ALL if example.language in SHELL and "run against" in example.directives]


def _run_python(code: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = cwd / "example.py"
    script.write_text(code, encoding="utf-8")
    return subprocess.run([sys.executable, str(script)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)


@pytest.fixture(scope="module")
def smtp_ingress(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """``mail-gateway smtpd`` in development (the console backend) on a free loopback port."""
    port = free_port()
    env = gateway_env(gateway_env="development", gateway_smtp_host=HOST, gateway_smtp_port=port)
    server = Process(["smtpd"], env, tmp_path_factory.mktemp("docs-smtpd"), http=False)

    def listening() -> bool:
        assert server.proc.poll() is None, f"smtpd exited:\n{server.output()}"
        try:
            socket.create_connection((HOST, port), timeout=2).close()
        except OSError:
            return False
        return True

    wait_until(listening, "smtpd listens", timeout=30)
    yield port
    server.stop()


@pytest.mark.parametrize("example", PYTHON, ids=lambda example: example.name)
def test_a_python_example_runs(example: Example, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    reason = example.directives.get("not run")
    if reason is not None:
        assert reason, f"{example.name}: 'not run' needs a reason after the colon"
        pytest.skip(f"{example.name}: {reason}")
    code = example.code
    if "mail-gateway smtpd" in example.directives.get("run against", ""):
        code = code.replace("1025", str(request.getfixturevalue("smtp_ingress")))
    code = "\n".join((example.directives.get("setup", ""), code, example.directives.get("check", "")))
    done = _run_python(code, tmp_path, gateway_env(gateway_env="testing"))
    assert done.returncode == 0, f"{example.name} failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def development_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    folder = tmp_path_factory.mktemp("docs-server")
    server = Process(["serve"], gateway_env(gateway_env="development", mail_default_sender="app@example.com"),
                     folder)
    yield server
    server.stop()


@pytest.mark.parametrize("example", SERVED, ids=lambda example: example.name)
def test_a_shell_example_runs_against_a_server(example: Example, development_server: Process,
                                               tmp_path: Path) -> None:
    script = example.code.replace("127.0.0.1:8000", f"127.0.0.1:{development_server.port}")
    script = script.replace("localhost:8000", f"127.0.0.1:{development_server.port}")
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False, env=gateway_env(gateway_env="development"))
    assert done.returncode == 0, f"{example.name} failed:\n{done.stdout}\n{done.stderr}"
    check = example.directives.get("check")
    if check:
        checked = _run_python(f"output = {done.stdout!r}\n{check}", tmp_path, gateway_env())
        assert checked.returncode == 0, f"{example.name}: its check failed:\n{checked.stderr}\n{done.stdout}"


def test_the_examples_are_found() -> None:
    """The extractor sees the examples the pages hold, so a change to the fence syntax cannot silently empty
    the two tests above."""
    names = {example.name for example in PYTHON}
    assert any(name.startswith("docs/getting-started.md") for name in names)
    assert any(example.source.name == "README.md" for example in PYTHON)
    assert SERVED, "no shell example is marked to run against a server"
