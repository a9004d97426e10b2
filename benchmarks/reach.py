"""What the CPU measured per message allows: the arithmetic behind a throughput target that a run misses.

A sender that is one Python process gets at most one core however many threads it runs, so its rate cannot pass
``1e6 / CPU µs per message``; and the sender, the sink and the load generator share the machine's cores, so
together they cannot pass ``cores × 1e6 / (sender + sink µs per message)`` (the load generator's own CPU is not
measured, so the real ceiling is lower still). A target above both ceilings is out of reach on this machine
whatever the gateway's speed; the note says how much CPU per message the target would need instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from benchmarks.results import Row


@dataclass(frozen=True)
class Reach:
    """One throughput target: ``goal`` × the floor's rate, by a sender of ``processes`` processes."""

    row: Row
    floor: Row
    goal: float
    processes: int = 1
    least: tuple[float, str] | None = None  # the least CPU per message any sender in its place spends, and why

    def line(self, cores: int) -> str | None:
        sender, sink = self.row.cpu_per_message(), self.row.cpu_per_message(sink=True) or 0.0
        if not sender or not self.floor.median_rate or not self.row.measured:
            return None
        wanted = self.goal * self.floor.median_rate
        process_cap = self.processes * 1e6 / sender
        machine_cap = cores * 1e6 / (sender + sink)
        ceiling = min(process_cap, machine_cap)
        needed = min(self.processes * 1e6 / wanted, cores * 1e6 / wanted - sink)
        verdict = "within reach" if ceiling >= wanted else "out of reach on this machine"
        spent = f"{sender:,.0f} µs of server CPU" + (f" and {sink:,.0f} µs of sink CPU" if sink else "")
        line = (f"- **{self.row.name}**, {self.row.group}: ≥ {self.goal:g}× the floor is {wanted:,.0f} msgs/s. "
                f"Measured {spent} per message: {self.processes} process{'es' if self.processes > 1 else ''} can "
                f"reach {process_cap:,.0f} msgs/s and {cores} cores {machine_cap:,.0f}, so at most "
                f"{ceiling / self.floor.median_rate:.2f}× ({verdict}); the target needs ≤ {needed:,.0f} µs of "
                "server CPU per message")
        if self.least is None:
            return line + "."
        least, why = self.least
        below = "below" if least > needed else "above"
        return line + f", {below} the {least:,.0f} µs that {why}."


def overhead_line(row: Row, floor: Row, goal: float) -> str | None:
    """A row that must keep ``goal`` of a floor run on the same server: the extra CPU per message it may spend."""
    row_cpu, floor_cpu = row.cpu_per_message(), floor.cpu_per_message()
    if not row_cpu or not floor_cpu:
        return None
    allowed = floor_cpu * (1 / goal - 1)
    return (f"- **{row.name}**: {row_cpu:,.0f} µs of server CPU per message against {floor_cpu:,.0f} µs for "
            f"{floor.name}, {row_cpu - floor_cpu:+,.0f} µs; ≥ {goal:g}× allows at most {allowed:+,.0f} µs "
            "when both are bound by the server's CPU.")


def cpu_line(row: Row, floor: Row, plain: Row | None, goal: float) -> list[str]:
    """CPU per message over HTTP against the smtplib floor's, and the least any sender behind HTTP could spend."""
    row_cpu, floor_cpu = row.cpu_per_message(), floor.cpu_per_message()
    if not row_cpu or not floor_cpu:
        return []
    value = row_cpu / floor_cpu
    met = "yes" if value <= goal else f"no (over by {value - goal:.2f}×)"
    line = (f"| CPU per message, {row.name}, {row.group}: ≤ {goal:g}× the floor's ({goal * floor_cpu:,.0f} µs) | "
            f"{value:.2f}× ({row_cpu:,.0f} µs) | {met} |")
    plain_cpu = plain.cpu_per_message() if plain else None
    if not plain_cpu:
        return [line]
    least = plain_cpu + floor_cpu
    return [line, f"| (the least a sender behind the same HTTP server could spend: {plain.name} "
                  f"{plain_cpu:,.0f} µs + the floor's send {floor_cpu:,.0f} µs) | {least / floor_cpu:.2f}× "
                  f"({least:,.0f} µs) | {'—' if least <= goal * floor_cpu else 'out of reach'} |"]


def reach_notes(reaches: list[Reach], overheads: list[tuple[Row, Row, float]]) -> list[str]:
    cores = os.cpu_count() or 1
    lines = [line for reach in reaches if (line := reach.line(cores))]
    lines += [line for row, floor, goal in overheads if (line := overhead_line(row, floor, goal))]
    if not lines:
        return []
    return ["## What the measured CPU allows", "",
            "A sender of one Python process gets at most one core; the sender, the sink and the load generator share "
            f"this machine's {cores} cores (the load generator's CPU is not counted, so real ceilings are lower).",
            "", *lines, ""]
