"""The bench's arithmetic for targets out of reach: the ceilings that measured CPU per message allows."""

from __future__ import annotations

from benchmarks.reach import Reach, cpu_line, overhead_line
from benchmarks.results import Row, Run


def row(name: str, rate: float, sender_us: float | None = None, sink_us: float | None = None,
        floor: bool = False) -> Row:
    """A row of one repetition of 1,000 messages at ``rate`` msgs/s, with the CPU per message given."""
    elapsed = 1000 / rate
    run = Run(elapsed=elapsed, expected=1000, accepted=1000, sink_delta=None,
              sender_cpu=None if sender_us is None else sender_us * 1000 / 1e6,
              sink_cpu=None if sink_us is None else sink_us * 1000 / 1e6)
    return Row("asyncio sink", name, is_floor=floor, runs=[run])


def test_one_process_is_capped_at_one_core_and_the_machine_at_its_cores() -> None:
    floor = row("smtplib floor", 2000, sender_us=250, floor=True)
    sender = row("gateway HTTP: 1 message/request", 400, sender_us=2000, sink_us=500)
    line = Reach(sender, floor, 0.8, least=(750.0, "the plain route and the floor's send add up to")).line(cores=2)
    # 1e6 / 2,000 µs = 500 msgs/s on one core; 2 cores / 2,500 µs = 800; the target is 0.8 × 2,000 = 1,600 msgs/s,
    # which needs 1e6 / 1,600 = 625 µs per message on one core: below the 750 µs least.
    assert "1,600 msgs/s" in line and "can reach 500 msgs/s and 2 cores 800" in line
    assert "at most 0.25× (out of reach on this machine)" in line
    assert "needs ≤ 625 µs of server CPU per message, below the 750 µs" in line


def test_two_processes_within_reach_when_the_cores_allow() -> None:
    floor = row("smtplib floor", 1000, sender_us=300, floor=True)
    sender = row("serve --workers 2", 900, sender_us=1000, sink_us=200)
    line = Reach(sender, floor, 1.0, processes=2).line(cores=4)
    assert "2 processes can reach 2,000 msgs/s and 4 cores 3,333" in line and "at most 2.00× (within reach)" in line
    assert line.endswith("needs ≤ 2,000 µs of server CPU per message.")


def test_an_overhead_target_says_how_much_extra_cpu_it_allows() -> None:
    plain = row("plain route", 2000, sender_us=500, floor=True)
    gateway = row("gateway, memory backend", 1000, sender_us=900)
    # ≥ 0.8× allows 500 × (1 / 0.8 - 1) = +125 µs; measured +400 µs.
    assert "+400 µs; ≥ 0.8× allows at most +125 µs" in (overhead_line(gateway, plain, 0.8) or "")


def test_the_cpu_target_and_the_least_any_http_sender_spends() -> None:
    floor = row("smtplib floor", 2000, sender_us=300, floor=True)
    sender = row("gateway HTTP: 1 message/request", 600, sender_us=1500)
    plain = row("plain route", 2000, sender_us=500, floor=True)
    target, least = cpu_line(sender, floor, plain, 2.5)
    assert "≤ 2.5× the floor's (750 µs) | 5.00× (1,500 µs) | no (over by 2.50×) |" in target
    assert "| 2.67× (800 µs) | out of reach |" in least
    assert cpu_line(row("no CPU measured", 600), floor, plain, 2.5) == []
