"""The load lab's results file, `reports/<timestamp>/results.json`: its documented schema.

`make experiment` writes the whole file from typed results (loadtests/study/results.py) and its
report renders from the same file. This module documents it, and is the only reader of what
capacity planning relies on: the worker runs of both scaling studies.

    {
      "schema": 2,
      "parameters": {...},              # the run's knobs (latency, N, limits, durations, command,
                                        #   drain_threads: most threads per drain worker process)
      "environment": {...},             # CPUs, versions, "database": "PostgreSQL 15.x" | "SQLite ..."
      "phases": [{"name", "estimated_seconds", "seconds"}, ...],
      "sqs_ceilings": [{"depth", "threads", "sends", "send_seconds", "received", "receive_seconds",
                        "client_cores", "server_cores"}, ...],
      "sync": {...},                    # sync checkout: Locust stats, order counts, provider, cpu
      "accept": [{"database", "product": "unlimited" | "hot" | "sold-out", "checkout",
                  "refusals",                 # the 409 out_of_stock answers' stats (sold-out rows)
                  "stock": {...},             # units on sale, taken, oversold (hot and sold-out rows)
                  "trivial_get", "cpu", ...}, ...],   # a file without "product" is all "unlimited"
      "drain": [                        # the drain study: K orders queued, then N worker threads
        {
          "name": "drain-w20-l0",       # "drain-w200-l0-p4" when split over processes
          "workers": 20,                # worker threads, in all
          "processes": 1,               # worker processes they ran in, workers / processes each
          "provider_limit": 0,          # charges the sandbox ran at once; 0 = no limit
          "latency": 3.0,               # seconds per charge at the sandbox
          "rate": 6.5,                  # orders paid per second, first claim to last payment
          "ideal_rate": 6.67,           # min(workers, limit) / latency
          "efficiency": 0.98,           # rate / ideal_rate
          "task_errors": 0, "charged_twice": 0, "not_charged": 0,
          "orders": 160, "paid": 160, "failed": 0, "seconds": 24.6, "overhead_ms": 40.0,
          "provider_peak": 20, "worker_rss_mb": 80.0,
          "cpu_seconds": {"worker": 3.1, "sqs": 0.4, "postgres": 1.2, "machine": 9.0, "wall": 25.1, ...}
        }, ...
      ],
      "scaling": [                      # under the seed's flash-sale load (Locust), then the drain watched
        {
          "name": "w20-l0", "workers": 20, "provider_limit": 0, "latency": 3.0,
          "measured_rate": 6.4,         # orders paid per second, first claim to the end
          "ideal_rate": 6.67,
          "efficiency": 0.96,           # measured_rate / ideal_rate
          "overhead_ms": 90.0, "peak_depth": 2500, "incoming_rate": 59.1,
          "drain": {"kind": "measured" | "extrapolated", "seconds", "observed_seconds", "remaining_at_stop"},
          "checkout": {Locust stats}, "orders": {"orders", "accepted", "processing", "paid", "failed"},
          "cpu": {"wall", "machine", "cores", "processes": {"locust", "web", "sqs", "worker", ...}}, ...
        }, ...
      ],
      "capacity": {"p99_limit_ms", "steps": [...]},
      "saturation": [{"name": "get" | "unlimited" | "hot", "method", "path", "product",
                      "connections", "threads", "duration", "wrk": {...}, "cpu": {...},
                      "orders", "unpublished_at_end", ...}, ...],   # wrk, closed loop
      "memory": [{"pool", "concurrency", "idle_rss_mb", "peak_rss_mb", "peak_pss_mb", "processes"}, ...],
      "eta": {                          # the place in line's ETA against paid_at (null: not run)
        "name": "eta-w100-l0", "workers", "latency", "users", "duration", "orders": {...},
        "every": 18,                    # one order in 18, by arrival, was read
        "sampled", "reads", "read_errors", "reread_seconds", "first_read_delay_p50",
        "waiting_before", "paid_last_minute_before",   # the line and the rate when the run began
        "rate_window_seconds": 60.0, "first_paid_at", "peak_position", "shrank", "eta_pairs",
        "groups": [{"group": "first" | "position" | "later" | "window", "label",
                    "reads", "no_eta", "not_paid", "measured",
                    "median_abs_error", "p90_abs_error", "median_error",   # seconds, predicted - paid
                    "median_relative_error", "p90_relative_error",        # |error| ÷ the actual wait
                    "median_actual", "median_predicted", "position_min", "position_max"}, ...], ...
      }
    }

Capacity reads, from "drain" and "scaling", only: workers, provider_limit, latency, the rate
("rate" in drain, "measured_rate" in scaling), ideal_rate, efficiency (and a drain run's name,
task_errors and charged_twice). Schema 1 files (before the drain study) have "scaling" only, with
the same fields; they are still read.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

SCHEMA_VERSION = 2
READABLE = (1, 2)
DRAIN, SCALING = "drain study", "flash-sale scaling"


class ResultsError(Exception):
    """The results file is missing, unreadable, or not a schema capacity understands."""


@dataclass(frozen=True)
class WorkerRun:
    """One worker count measured by either study."""

    source: str  # DRAIN or SCALING
    name: str
    workers: int
    provider_limit: int
    latency: float
    measured_rate: float
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
    def from_json(cls, source: str, row: dict) -> WorkerRun:
        try:
            workers, limit = int(row["workers"]), int(row["provider_limit"])
            drain = source == DRAIN
            return cls(
                source=source,
                name=str(row.get("name") or f"drain-w{workers}-l{limit}") if drain else str(row["name"]),
                workers=workers,
                provider_limit=limit,
                latency=float(row["latency"]),
                measured_rate=float(row["rate" if drain else "measured_rate"]),
                ideal_rate=float(row["ideal_rate"]),
                efficiency=None if row.get("efficiency") is None else float(row["efficiency"]),
                clean=not drain or (int(row["task_errors"]) == 0 and int(row["charged_twice"]) == 0),
                processes=int(row.get("processes") or 1),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ResultsError(f"a {source} run lacks a documented field: {exc!r}") from exc


def worker_runs(path: Path) -> list[WorkerRun]:
    """The worker runs of a results.json (or of the report directory holding it): drain, then scaling."""
    path = path / "results.json" if path.is_dir() else path
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ResultsError(f"cannot read {path}: {exc}") from exc
    version = results.get("schema", 1)
    if version not in READABLE:
        raise ResultsError(
            f"{path} has results schema {version}; this shop reads {', '.join(map(str, READABLE))}"
        )
    return [WorkerRun.from_json(DRAIN, row) for row in results.get("drain", [])] + [
        WorkerRun.from_json(SCALING, row) for row in results.get("scaling", [])
    ]


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
