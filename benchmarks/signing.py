"""What DKIM signing costs: the gateway over HTTP signing every message with a 2048-bit RSA key, and with an
Ed25519 key, against the same gateway not signing, in the same run against the same sink (the unsigned row is
the floor, so each signed row's ratio is what signing leaves of the rate)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from benchmarks import payload
from benchmarks.drive import HttpScenario, Plan, measure, start_gateway
from benchmarks.procs import HttpServer, Sink
from benchmarks.results import Row

GROUP = "DKIM signing, aiosmtpd sink"
GOAL = 0.7  # each signed send against the unsigned one
DOMAIN = payload.SENDER.rpartition("@")[2]
KINDS = [("unsigned", None), ("DKIM rsa-sha256, 2048-bit key", "rsa"), ("DKIM ed25519-sha256", "ed25519")]


def write_keys(folder: Path) -> dict[str, str]:
    """A key file of each kind, made as ``mail-gateway dkim keygen`` makes them; GATEWAY_DKIM_KEYS for each."""
    from mail_gateway.sending.dkim_keys import key_file_bytes, new_key

    settings = {}
    for kind in ("rsa", "ed25519"):
        path = folder / f"{kind}.key"
        path.write_bytes(key_file_bytes(new_key(kind == "ed25519")))
        settings[kind] = f"{DOMAIN}:bench-{kind}:{path}"
    return settings


def signing_group(plan: Plan) -> list[Row]:
    print(GROUP, file=sys.stderr, flush=True)
    rows = [Row(GROUP, f"gateway HTTP, {label}, {plan.concurrency} clients", is_floor=kind is None)
            for label, kind in KINDS]
    from mail_gateway.settings import GatewaySettings

    if "gateway_dkim_keys" not in GatewaySettings.model_fields:
        for row in rows:
            row.not_applicable = "n/a: this version does not sign with DKIM"
        return rows
    sink, servers, scenarios = Sink("aiosmtpd", 0.0), [], []
    with tempfile.TemporaryDirectory(prefix="bench-dkim-") as folder:
        keys = write_keys(Path(folder))
        try:
            for row, (_, kind) in zip(rows, KINDS, strict=True):
                more = {} if kind is None else {"gateway_dkim_keys": keys[kind]}
                try:
                    server = start_gateway(plan, "smtp", sink, **more)
                except RuntimeError as exc:
                    row.error = str(exc)
                    continue
                servers.append(server)
                scenarios.append(HttpScenario(row, server, sink, "/v1/messages", payload.single_json(), 1,
                                              plan.messages, plan.concurrency))
            measure(scenarios, plan.reps)
        finally:
            stop(servers, sink)
    return rows


def stop(servers: list[HttpServer], sink: Sink) -> None:
    for server in servers:
        server.stop()
    sink.stop()


def cost_note(rows: list[Row]) -> list[str]:
    """The server CPU each signature adds per message, from the median runs' CPU per message."""
    floor = next((r for r in rows if r.is_floor and r.measured), None)
    base = floor.cpu_per_message() if floor else None
    if base is None:
        return []
    costs = []
    for row in (r for r in rows if not r.is_floor and r.measured):
        signed = row.cpu_per_message()
        if signed is not None:
            costs.append(f"{row.name.split(', ')[1]} +{signed - base:,.0f} µs")
    return [f"Server CPU that signing adds per message (median runs): {'; '.join(costs)}.", ""] if costs else []
