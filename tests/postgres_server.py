"""A private PostgreSQL cluster for the tests (and ``make bench``): ``initdb`` into a temporary directory, a free
loopback port, stopped at the end, as pytest-postgresql does. Debian's ``postgresql`` package provides the server
(``make test`` and ``.ci/run`` install it when missing). Running as root, the cluster runs as the ``postgres``
system user, since PostgreSQL refuses to run as root."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg

# For the tests: a crash of the machine is not what they test, so commits need not wait for the disk. The
# benchmarks keep PostgreSQL's durable defaults.
FAST = ("-c fsync=off -c synchronous_commit=off -c full_page_writes=off",)


def bindir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if not candidates:
        raise RuntimeError("PostgreSQL is not installed: make test installs Debian's postgresql with apt-get")
    return Path(candidates[-1]).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    def __init__(self, *, durable: bool = False, max_connections: int = 300) -> None:
        self.bindir = bindir()
        # Directly under the system's temporary directory: a test's own tmp_path sits below directories only its
        # user may enter, which the postgres user could not reach.
        self.directory = Path(tempfile.mkdtemp(prefix="mail-gateway-postgres-"))
        self.data = self.directory / "data"
        self.port = _free_port()
        self.options = [f"-p {self.port}", "-c listen_addresses=127.0.0.1", f"-k {self.directory}",
                        f"-c max_connections={max_connections}", *(() if durable else FAST)]
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self._databases = 0

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self._as, *args], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed ({done.returncode}): {done.stderr[-2000:]}")

    def start(self) -> PostgresServer:
        if self._as:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--no-locale")
        self.resume()
        return self

    def pause(self) -> None:
        """Stop the server, its data kept, as an outage of the store does; ``resume()`` starts it again."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", " ".join(self.options), "-l",
                  str(self.directory / "server.log"), "-w", "-t", "60", "start")

    def create_database(self, name: str | None = None) -> str:
        """A new, empty database; its ``postgresql://`` URL."""
        self._databases += 1
        name = name or f"test_{os.getpid()}_{self._databases}"
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def create_store(self) -> str:
        """A new database with the gateway store's schema applied; its URL."""
        from mail_gateway.store.database import Store

        url = self.create_database()
        store = Store(url)
        store.upgrade()
        store.close()
        return url

    def conninfo(self, database: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
