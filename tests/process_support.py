"""Run ``mail-gateway`` commands as real processes on loopback, for crash and restart tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ingress_support import wait_until
from smtp_server import HOST, free_port

BIN = Path(sys.executable).parent / "mail-gateway"


def gateway_env(**values: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAIL_", "GATEWAY_"))}
    return {**env, "PYTHONUNBUFFERED": "1", **{k.upper(): str(v) for k, v in values.items()}}


def request(port: int, method: str, path: str, payload: Any = None, headers: dict[str, str] | None = None,
            timeout: float = 10) -> tuple[int, dict[str, Any], dict[str, str]]:
    data = json.dumps(payload).encode() if payload is not None else None
    req = urllib.request.Request(f"http://{HOST}:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}"), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}"), dict(exc.headers)


def children(pid: int) -> list[int]:
    """The processes ``pid`` has started (a prefork master's workers); none once it has exited."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=10) as answer:
        return answer.read().decode()


def metric(text: str, line_start: str) -> float:
    """The sum of the samples in ``text`` (Prometheus' text format) whose lines start with ``line_start``."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start))


def stop_and_read(process: subprocess.Popen, timeout: float) -> tuple[str, str]:
    """TERM ``process`` and return what it printed. One that does not stop in time is killed, its pipes closed
    with it (so no open pipe turns up as a warning in a later test), and fails the test."""
    process.terminate()
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        raise AssertionError(f"{process.args} did not stop within {timeout:g}s of TERM:\n{err}") from None


class Process:
    def __init__(self, args: list[str], env: dict[str, str], cwd: Path, *, http: bool = True) -> None:
        self.port = free_port()
        command = [str(BIN), *args] + (["--port", str(self.port)] if http else [])
        self.log = open(cwd / f"{args[0]}-{self.port}.log", "w+")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT)
        if http:
            wait_until(self._ready, f"{args[0]} answers", timeout=30)

    def _ready(self) -> bool:
        assert self.proc.poll() is None, f"the process exited:\n{self.output()}"
        try:
            return request(self.port, "GET", "/healthz", timeout=2)[0] == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL: no clean-up of any kind
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()
