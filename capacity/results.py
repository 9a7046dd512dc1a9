"""The load lab's results file, `reports/<timestamp>/results.json`: the part of it capacity reads.

`make experiment` writes the whole file; this module documents, and is the only reader of, what
capacity planning relies on. Other keys may come and go with the lab's report.

    {
      "schema": 1,
      "scaling": [                      # one entry per worker-scaling run
        {
          "name": "w20-l0",             # the run's label
          "workers": 20,                # worker threads (one worker process)
          "provider_limit": 0,          # charges the sandbox ran at once; 0 = no limit
          "latency": 3.0,               # seconds per charge at the sandbox
          "measured_rate": 6.4,         # orders paid per second, first claim to the end
          "ideal_rate": 6.67,           # min(workers, limit) / latency
          "efficiency": 0.96            # measured_rate / ideal_rate
        }, ...
      ],
      ...                               # the rest belongs to the lab's report
    }

A file without "schema" comes from before version 1 and has the same scaling fields.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

SCHEMA_VERSION = 1


class ResultsError(Exception):
    """The results file is missing, unreadable, or not a schema capacity understands."""


@dataclass(frozen=True)
class ScalingRun:
    name: str
    workers: int
    provider_limit: int
    latency: float
    measured_rate: float
    ideal_rate: float
    efficiency: float | None

    @classmethod
    def from_json(cls, row: dict) -> ScalingRun:
        try:
            return cls(
                name=str(row["name"]),
                workers=int(row["workers"]),
                provider_limit=int(row["provider_limit"]),
                latency=float(row["latency"]),
                measured_rate=float(row["measured_rate"]),
                ideal_rate=float(row["ideal_rate"]),
                efficiency=None if row.get("efficiency") is None else float(row["efficiency"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ResultsError(f"a scaling run lacks a documented field: {exc!r}") from exc


def scaling_runs(path: Path) -> list[ScalingRun]:
    """The scaling runs of a results.json (or of the report directory holding it)."""
    path = path / "results.json" if path.is_dir() else path
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ResultsError(f"cannot read {path}: {exc}") from exc
    version = results.get("schema", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise ResultsError(f"{path} has results schema {version}; this shop reads {SCHEMA_VERSION}")
    return [ScalingRun.from_json(row) for row in results.get("scaling", [])]


def worker_efficiency(runs: list[ScalingRun], near_workers: int) -> ScalingRun:
    """The no-limit run whose worker count is nearest `near_workers` (on a log scale).

    Only runs without a provider limit measure the workers themselves; with a limit the provider
    sets the pace. 20 is nearer to 40 than 5 is.
    """
    candidates = [r for r in runs if r.provider_limit == 0 and r.efficiency]
    if not candidates:
        raise ResultsError("no worker-scaling run without a provider limit")
    return min(candidates, key=lambda r: abs(math.log(r.workers) - math.log(max(near_workers, 1))))
