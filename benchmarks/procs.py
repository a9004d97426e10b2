"""The processes a benchmark run starts: SMTP sinks, HTTP servers and load generators, each its own process
so that none of them shares a GIL with what it measures."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0
GATEWAY_MAIN = "from mail_gateway.cli import main; main()"  # `mail-gateway`, whichever environment runs the harness


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a child: nothing MAIL_*/GATEWAY_* of the machine leaks into what is measured."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("MAIL_", "GATEWAY_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def read_line(proc: subprocess.Popen, timeout: float, what: str) -> str:
    """The child's next stdout line, or an error naming ``what`` and the child's stderr."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], max(deadline - time.monotonic(), 0))
        if ready:
            line = proc.stdout.readline()
            if line:
                return line.strip()
            break
    proc.kill()
    _, err = proc.communicate(timeout=5)
    raise RuntimeError(f"{what}: no answer (exit code {proc.returncode}); stderr:\n{(err or '')[-2000:]}")


def peak_rss_kib(pid: int) -> int | None:
    """The process's peak resident set (VmHWM) in KiB, where /proc has it."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    """The process's child processes (a prefork server's workers), where /proc lists them."""
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time the process and its live children have used, where /proc has it."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(child) or 0.0 for child in children(pid))


class CpuMeter:
    """CPU seconds a process spends between ``start()`` and ``stop()``."""

    def __init__(self, pid: int | None) -> None:
        self.pid, self.begin = pid, None

    def start(self) -> None:
        self.begin = cpu_seconds(self.pid) if self.pid else None

    def stop(self) -> float | None:
        end = cpu_seconds(self.pid) if self.pid else None
        return end - self.begin if end is not None and self.begin is not None else None


class Sink:
    """A sink process: ``count()`` is how many messages it accepted so far."""

    def __init__(self, kind: str, latency_ms: float) -> None:
        self.kind, self.latency_ms = kind, latency_ms
        self.label = f"{kind} sink" + (f", +{latency_ms:g} ms per reply" if latency_ms else "")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.sink", "--kind", kind, "--latency-ms", str(latency_ms)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(),
        )
        ready = read_line(self.proc, START_TIMEOUT, f"{self.label} start-up")
        self.port = int(ready.split()[1])

    def count(self) -> int:
        self.proc.stdin.write("count\n")
        self.proc.stdin.flush()
        return int(read_line(self.proc, 10, f"{self.label} count"))

    def settled_count(self, expected: int, timeout: float = 2.0) -> int:
        """The count, given a short bounded chance to reach ``expected``: a sender that gave up waiting for a
        reply may have left a message in flight, and the check must not call that one lost too early."""
        deadline = time.monotonic() + timeout
        count = self.count()
        while count < expected and time.monotonic() < deadline:
            time.sleep(0.05)
            count = self.count()
        return count

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class HttpServer:
    """A WSGI server in a subprocess: the gateway (``mail-gateway serve``) or the plain Flask route."""

    def __init__(self, app: str, env: dict[str, str], threads: int | None, command: list[str] | None = None) -> None:
        """``command``, with ``{port}`` in its arguments, runs ``app`` under another server than its own."""
        self.app, self.port = app, free_port()
        self.workdir = tempfile.TemporaryDirectory(prefix="bench-")
        self.log = open(Path(self.workdir.name) / "server.log", "w+")  # noqa: SIM115 - closed in stop()
        if command is not None:
            cmd = [part.replace("{port}", str(self.port)) for part in command]
        elif app == "gateway":
            cmd = [sys.executable, "-c", GATEWAY_MAIN, "serve", "--host", HOST,
                   "--port", str(self.port)]
        else:
            cmd = [sys.executable, "-m", "benchmarks.plain_app", "--port", str(self.port)]
        if threads and command is None:
            cmd += ["--threads", str(threads)]
        # Its own directory: no .env file is read, and any store the server keeps stays out of the repository.
        self.proc = subprocess.Popen(cmd, cwd=self.workdir.name, env=clean_env(**env), stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with socket.create_connection((HOST, self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the {self.app} server did not start:\n{self.output()[-3000:]}")

    def output(self) -> str:
        self.log.flush()
        return (Path(self.workdir.name) / "server.log").read_text(errors="replace")

    def peak_rss_kib(self) -> int | None:
        """The server's peak resident set: its own, or its largest worker's for a prefork server."""
        peaks = [peak_rss_kib(pid) for pid in (self.proc.pid, *children(self.proc.pid))]
        return max((p for p in peaks if p is not None), default=None)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        self.workdir.cleanup()


def run_loadgen(port: int, path: str, body: bytes, requests: int, concurrency: int,
                headers: dict[str, str]) -> dict[str, Any]:
    """Run the load generator in its own process; returns its JSON report."""
    with tempfile.NamedTemporaryFile(suffix=".json") as body_file:
        body_file.write(body)
        body_file.flush()
        cmd = [sys.executable, "-m", "benchmarks.loadgen", "--port", str(port), "--path", path,
               "--body-file", body_file.name, "--requests", str(requests), "--concurrency", str(concurrency)]
        for name, value in headers.items():
            cmd += ["--header", f"{name}: {value}"]
        done = subprocess.run(cmd, capture_output=True, text=True, env=clean_env(), timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout)
