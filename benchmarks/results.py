"""What a benchmark run records: each scenario's repetitions and the checks made on them."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Run:
    """One repetition: ``expected`` messages offered, ``accepted`` reported accepted by the sender."""

    elapsed: float
    expected: int
    accepted: int
    sink_delta: int | None  # messages the sink received during the run; None without a sink
    p50_ms: float | None = None
    p99_ms: float | None = None
    peak_rss_kib: int | None = None
    sender_cpu: float | None = None  # CPU seconds of the sending process (the library caller, the HTTP server)
    sink_cpu: float | None = None  # CPU seconds of the sink
    failure_samples: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.accepted / self.elapsed if self.elapsed > 0 else 0.0

    def per_message_us(self, cpu: float | None) -> float | None:
        return cpu / self.accepted * 1e6 if cpu is not None and self.accepted else None

    @property
    def problems(self) -> list[str]:
        found = []
        if self.accepted != self.expected:
            found.append(f"{self.expected - self.accepted} of {self.expected} messages not reported accepted")
        if self.sink_delta is not None and self.sink_delta != self.accepted:
            kind = "LOST" if self.sink_delta < self.accepted else "DOUBLED"
            found.append(f"{kind}: the sink received {self.sink_delta}, the sender reported {self.accepted} accepted")
        return found


@dataclass
class Row:
    group: str
    name: str
    is_floor: bool = False
    runs: list[Run] = field(default_factory=list)
    warm_up: list[Run] = field(default_factory=list)
    not_applicable: str | None = None
    error: str | None = None

    @property
    def measured(self) -> bool:
        return bool(self.runs) and self.error is None

    @property
    def rates(self) -> list[float]:
        return [r.rate for r in self.runs]

    @property
    def median_rate(self) -> float:
        return statistics.median(self.rates) if self.runs else 0.0

    @property
    def median_run(self) -> Run | None:
        """The repetition whose rate is the median (the lower middle one for an even count)."""
        if not self.runs:
            return None
        ordered = sorted(self.runs, key=lambda r: r.rate)
        return ordered[(len(ordered) - 1) // 2]

    def cpu_per_message(self, *, sink: bool = False) -> float | None:
        """µs of CPU per message of the sending process (or of the sink) in the median repetition."""
        run = self.median_run
        return run.per_message_us(run.sink_cpu if sink else run.sender_cpu) if run else None

    @property
    def peak_rss_kib(self) -> int | None:
        peaks = [r.peak_rss_kib for r in self.runs if r.peak_rss_kib is not None]
        return max(peaks) if peaks else None

    @property
    def problems(self) -> list[str]:
        found = [f"{self.group} / {self.name}: {p}" for run in self.warm_up + self.runs for p in run.problems]
        if self.error:
            found.append(f"{self.group} / {self.name}: ERROR {self.error}")
        return found

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["median_rate"] = self.median_rate
        data["problems"] = self.problems
        for run, raw in zip(self.runs, data["runs"], strict=True):
            raw["rate"] = run.rate
        return data


@dataclass
class MemoryRow:
    sender: str
    attachment_kib: int
    before_kib: int | None = None
    peak_kib: int | None = None
    accepted: int | None = None
    sink_delta: int | None = None
    not_applicable: str | None = None
    error: str | None = None

    @property
    def growth_kib(self) -> int | None:
        if self.before_kib is None or self.peak_kib is None:
            return None
        return self.peak_kib - self.before_kib

    @property
    def problems(self) -> list[str]:
        found = []
        if self.error:
            found.append(f"attachment / {self.sender}: ERROR {self.error}")
        elif self.not_applicable is None:
            if self.accepted != 1:
                found.append(f"attachment / {self.sender}: the sender reported {self.accepted} accepted, not 1")
            if self.sink_delta is not None and self.sink_delta != self.accepted:
                found.append(f"attachment / {self.sender}: the sink received {self.sink_delta}, "
                             f"the sender reported {self.accepted} accepted")
        return found

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "growth_kib": self.growth_kib, "problems": self.problems}


def ratio(row: Row, floor: Row | None) -> tuple[float | None, str]:
    if floor is None or not floor.measured or not row.measured or floor.median_rate == 0:
        return None, "—"
    f = floor.median_rate
    return row.median_rate / f, f"{row.median_rate / f:.2f}× ({min(row.rates) / f:.2f}–{max(row.rates) / f:.2f})"
