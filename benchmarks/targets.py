"""The targets a run is judged by, each against the floor of its own group in the same run, and the arithmetic
that shows, from the CPU measured per message, which of them this machine can reach at all."""

from __future__ import annotations

from benchmarks.reach import Reach, cpu_line, reach_notes
from benchmarks.results import MemoryRow, Row, ratio
from benchmarks.scaling_http import REACH as SCALE_REACH
from benchmarks.servers import GROUP as SERVERS_GROUP
from benchmarks.signing import GOAL as SIGNING_GOAL
from benchmarks.signing import GROUP as SIGNING_GROUP
from benchmarks.templates import GOAL as TEMPLATES_GOAL
from benchmarks.templates import GROUP as TEMPLATES_GROUP

SINGLE, BATCH = "gateway HTTP: 1 message", "gateway HTTP: batch"
QUEUED_ACCEPT = "gateway HTTP, queued: durable accept, 1 message/request"
QUEUED_DRAIN = "gateway, queued: drain a backlog"
OVERHEAD_GOAL = 0.85  # the memory backend over HTTP against a plain Flask JSON route
# Direct over HTTP, one process, against the smtplib floor: 0.8× where the sink is cheap enough to show the
# gateway's own cost, 1× elsewhere; and its CPU per message against the floor's.
SINGLE_GOALS = {"asyncio sink": 0.8}
CPU_GOAL = 2.5
OVERHEAD_GROUP = "HTTP overhead, no SMTP"
MEMORY_GOALS = {"gateway over HTTP": 3.0}  # peak RSS growth, × the attachment; 5× for the others


def targets(rows: list[Row], memory: list[MemoryRow]) -> list[str]:
    lines = ["| Target | Measured | Met |", "|---|---:|---|"]
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.group, []).append(row)
    for group, members in groups.items():
        floor = next((r for r in members if r.is_floor), None)
        latency = "ms per reply" in group
        for prefix, goal, what in ((SINGLE, SINGLE_GOALS.get(group, 1.0), "HTTP, 1 message/request"),
                                   (BATCH, 6.0 if latency else 2.0, "HTTP batch route"),
                                   (QUEUED_ACCEPT, 1.0, "queued: HTTP durable accept, 1 message/request"),
                                   (QUEUED_DRAIN, 10.0 if latency else 1.2, "queued: drain of a backlog")):
            row = next((r for r in members if r.name.startswith(prefix)), None)
            if row is None or (latency and prefix in (SINGLE, QUEUED_ACCEPT)):
                continue
            value, _ = ratio(row, floor)
            measured = f"{value:.2f}×" if value is not None else (row.not_applicable or "not measured")
            met = "—" if value is None else ("yes" if value >= goal else f"no (short by {goal - value:.2f}×)")
            lines.append(f"| {what}, {group}: ≥ {goal:g}× the floor | {measured} | {met} |")
        own_targets = group == SERVERS_GROUP or group.startswith("scale-out")  # benchmarks.scaling_http has its own
        if not own_targets and not any(r.name.startswith((SINGLE, BATCH, QUEUED_DRAIN)) for r in members) and floor:
            goal = {SIGNING_GROUP: SIGNING_GOAL, TEMPLATES_GROUP: TEMPLATES_GOAL}.get(group, OVERHEAD_GOAL)
            for row in (r for r in members if not r.is_floor):
                value, _ = ratio(row, floor)
                measured = f"{value:.2f}×" if value is not None else "not measured"
                short = f"no (short by {goal - (value or 0):.2f}×)"
                met = "—" if value is None else ("yes" if value >= goal else short)
                lines.append(f"| {row.name}: ≥ {goal:g}× the {floor.name} | {measured} | {met} |")
    single, floor = first(rows, "asyncio sink", SINGLE), first(rows, "asyncio sink")
    if single and floor:
        lines += cpu_line(single, floor, first(rows, OVERHEAD_GROUP), CPU_GOAL)
    for m in memory:
        if m.growth_kib is not None and m.sender.startswith("gateway"):
            times, goal = m.growth_kib / m.attachment_kib, MEMORY_GOALS.get(m.sender, 5.0)
            met = "yes" if times < goal else f"no (over by {times - goal:.1f}×)"
            lines.append(f"| {m.sender}, {m.attachment_kib / 1024:g} MB attachment: peak RSS growth < {goal:g}× | "
                         f"{times:.1f}× | {met} |")
    return lines


def first(rows: list[Row], group: str, prefix: str | None = None) -> Row | None:
    """The group's first measured row named ``prefix…``, or its floor without a prefix."""
    return next((r for r in rows if r.group == group and r.measured
                 and (r.name.startswith(prefix) if prefix else r.is_floor)), None)


def reaches(rows: list[Row]) -> list[str]:
    """The arithmetic for the throughput targets on HTTP: what the run's CPU per message allows."""
    plain_row = first(rows, OVERHEAD_GROUP)
    plain = plain_row.cpu_per_message() if plain_row else None

    def least(floor: Row, prefix: str) -> tuple[float, str] | None:
        if plain is None:
            return None
        if prefix == QUEUED_ACCEPT:  # nothing is sent, but every request is still an HTTP request
            return plain, f"the plain Flask JSON route alone spends per request on the same server ({OVERHEAD_GROUP})"
        send = floor.cpu_per_message()
        return (plain + send, f"the plain Flask JSON route ({plain:,.0f} µs) and the floor's own send ({send:,.0f} µs) "
                "add up to") if send else None

    wanted = [Reach(row, floor, SINGLE_GOALS.get(group, 1.0) if prefix == SINGLE else 1.0, 1, least(floor, prefix))
              for group in ("asyncio sink", "aiosmtpd sink") for prefix in (SINGLE, QUEUED_ACCEPT)
              if (row := first(rows, group, prefix)) and (floor := first(rows, group))]
    wanted += [Reach(row, floor, goal, processes, least(floor, SINGLE))
               for group, prefix, goal, processes in SCALE_REACH
               if (row := first(rows, group, prefix)) and (floor := first(rows, group))]
    overheads = [(row, first(rows, group), goal) for group, goal in
                 ((OVERHEAD_GROUP, OVERHEAD_GOAL), (SIGNING_GROUP, SIGNING_GOAL), (TEMPLATES_GROUP, TEMPLATES_GOAL))
                 for row in rows if row.group == group and not row.is_floor and row.measured and first(rows, group)]
    return reach_notes(wanted, overheads)

