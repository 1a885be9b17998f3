"""`make bench`: speed and memory benchmarks, each printed beside the baselines measured in the same run.

Each section is a module here with `run(quick: bool) -> Section`. `python -m carremoval.bench` runs them all,
prints one table, and writes metrics/bench.json.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Callable


@dataclass
class Row:
    """One measured figure, e.g. ('segment: pipeline', 4.2, 'images/s', 'median of 5')."""

    what: str
    value: float
    unit: str
    note: str = ""


@dataclass
class Check:
    """A target from the issues, judged on figures measured in the same run."""

    target: str
    ok: bool
    detail: str


@dataclass
class Section:
    name: str
    rows: list[Row] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def median_seconds(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of `fn()` over `repeats` runs after `warmup` untimed runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
