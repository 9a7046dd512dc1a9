"""The one recommendation of payment workers: the seed's `rate * latency`, the provider's ceiling, and a
lab run's measured efficiency, read from results.json through the lab's own dataclasses (results.py).

`manage.py recommend_workers` prints it; `python -m deploy recommend` prints it and then the stack's
tasks; the lab's report (loadtests/report.py) quotes it; `python -m deploy` sizes the stack's
autoscaling with `per_thread_rate`. Which run is read: the no-limit run whose thread count is
nearest the one asked for (`worker_efficiency`), the drain study's before the flash-sale scaling's.
No Django here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from sizing.results import DrainRun, ResultsError, ScalingRun, StudyResults
from sizing.workers import Sizing, ideal_rate

DRAIN, SCALING = "drain study", "flash-sale scaling"

__all__ = ["DRAIN", "SCALING", "Recommendation", "ResultsError", "WorkerRun", "latest_report", "recommend"]


@dataclass(frozen=True)
class WorkerRun:
    """What sizing reads of one measured worker count, a drain-study run or a flash-sale scaling run."""

    source: str  # DRAIN or SCALING
    name: str
    workers: int
    provider_limit: int
    latency: float
    measured_rate: float  # paid per second: a DrainRun's rate, a ScalingRun's measured_rate
    ideal_rate: float
    efficiency: float | None
    clean: bool = True  # no task error, nothing charged twice (a drain run checks both)
    processes: int = 1  # worker processes the threads ran in (drain runs may split N)

    @property
    def layout(self) -> str:
        """How the threads ran, in words: in one process, or in P processes of T each."""
        if self.processes > 1:
            return f"{self.workers} threads in {self.processes} processes × {self.workers // self.processes}"
        return f"{self.workers} threads in one process"

    @classmethod
    def of(cls, run: DrainRun | ScalingRun) -> WorkerRun:
        if isinstance(run, DrainRun):
            return cls(
                DRAIN, run.name, run.workers, run.provider_limit, run.latency, run.rate, run.ideal_rate,
                run.efficiency, run.task_errors == 0 and run.charged_twice == 0, run.processes or 1,
            )  # fmt: skip
        return cls(
            SCALING, run.name, run.workers, run.provider_limit, run.latency, run.measured_rate,
            run.ideal_rate, run.efficiency,
        )  # fmt: skip


def worker_runs(results: StudyResults | Path) -> list[WorkerRun]:
    """The worker runs of a study (or of its results.json, or the report directory holding it):
    the drain study's, then the flash-sale scaling's."""
    if isinstance(results, Path):
        results = StudyResults.load(results)
    runs: list[DrainRun | ScalingRun] = [*results.drain, *results.scaling]
    return [WorkerRun.of(run) for run in runs]


def worker_efficiency(runs: list[WorkerRun], near_workers: int) -> WorkerRun:
    """The no-limit run whose worker count is nearest `near_workers` (on a log scale).

    The drain study's runs come first: they measure the workers alone (no load generator sharing
    the CPU); the flash-sale runs are the fallback. A drain run with task errors or a double
    charge does not count. Only runs without a provider limit measure the workers themselves.
    20 is nearer to 40 than 5 is.
    """
    for source in (DRAIN, SCALING):
        candidates = [
            r for r in runs if r.source == source and r.provider_limit == 0 and r.efficiency and r.clean
        ]
        if candidates:
            return min(candidates, key=lambda r: abs(math.log(r.workers) - math.log(max(near_workers, 1))))
    raise ResultsError("no worker-scaling run without a provider limit")


def latest_report(base_dir: Path) -> Path:
    """The newest report's results.json under base_dir/reports (timestamped folders sort by time)."""
    reports = sorted((base_dir / "reports").glob("*/results.json"))
    if not reports:
        raise ResultsError("no reports/*/results.json yet; run `make experiment` first")
    return reports[-1]


@dataclass(frozen=True)
class Recommendation:
    """Workers for a target rate, and where the efficiency it assumed came from."""

    sizing: Sizing
    source: str  # the efficiency's origin, in words
    run: WorkerRun | None = None  # the measured run, when read from a report
    report: Path | None = None  # ... and the results.json (or its folder) it was read from

    @property
    def per_thread_rate(self) -> float:
        """Orders per second one worker thread pays at this efficiency: efficiency / latency."""
        return self.sizing.efficiency * ideal_rate(1, latency=self.sizing.latency)

    def lines(self) -> list[tuple[str, str]]:
        """What to print, each line with its style: "" (plain), "success" or "warning"."""
        s, rate, latency, limit = (
            self.sizing,
            self.sizing.rate,
            self.sizing.latency,
            self.sizing.provider_limit,
        )
        out = [
            ("", f"Target: {rate:g} orders/s, {latency:g} s per charge."),
            ("", f"Seed's formula: workers = rate × latency = {rate:g} × {latency:g} = {s.ideal_workers}"),
        ]
        if s.efficiency != 1.0:
            out.append(("", f"Efficiency {s.efficiency:.2f} ({self.source}): {s.workers} workers"))
        out.append(("success", f"Recommended workers: {s.workers}"))
        if s.provider_ceiling is not None:
            line = (
                f"Caveat: the provider runs {limit} charge(s) at once, so it pays at most "
                f"{s.provider_ceiling:.2f} orders/s whatever the worker count"
            )
            if s.reachable:
                out.append(("", line + f"; {rate:g}/s is within it."))
            else:
                out.append((
                    "warning",
                    line + f"; {rate:g}/s is out of reach. Beyond {limit} worker(s) "
                    f"(ideal {ideal_rate(limit, latency=latency, provider_limit=limit):.2f}/s) "
                    "more workers only wait longer. Raise the provider's limit or accept a queue.",
                ))  # fmt: skip
        return out


def recommend(
    rate: float,
    latency: float,
    provider_limit: int,
    *,
    report: Path | None = None,
    efficiency: float | None = None,
    near_workers: int | None = None,
) -> Recommendation:
    """Workers for `rate` orders/s: the ideal (efficiency 1.0), a given efficiency, or the one measured
    by a report's no-limit run nearest `near_workers` threads (default: the ideal worker count).

    Raises ValueError for nonsense figures and ResultsError for a report it cannot use.
    """
    if rate <= 0 or latency <= 0 or provider_limit < 0:
        raise ValueError("--rate and --latency must be positive, --provider-limit 0 or more")
    source, run = "assumed ideal (efficiency 1.0)", None
    if efficiency is None and report is not None:
        near = near_workers or Sizing(rate, latency, provider_limit, 1.0).ideal_workers
        try:
            run = worker_efficiency(worker_runs(report), near)
        except ResultsError as exc:
            raise ResultsError(f"{report}: {exc}") from exc
        efficiency = run.efficiency
        source = f"measured at {run.layout} ({run.source}) in {report}"
    elif efficiency is not None:
        source = "given"
    efficiency = 1.0 if efficiency is None else efficiency
    if not 0 < efficiency <= 1.5:
        raise ValueError(f"efficiency {efficiency:g} is out of range")
    return Recommendation(
        Sizing(rate, latency, provider_limit, efficiency), source, run, report if run else None
    )
