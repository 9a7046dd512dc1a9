"""The study's presets fit their time budgets by construction, and its results survive results.json."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from loadtests.drain.results import DrainRun
from loadtests.measure import Drain
from loadtests.study.config import FULL_BUDGET_SECONDS, QUICK_BUDGET_SECONDS, build_parser, resolve
from loadtests.study.results import (
    CpuShares,
    Environment,
    LocustStats,
    OrderCounts,
    Parameters,
    ProviderSummary,
    ScalingRun,
    StudyResults,
)  # fmt: skip


def config(*argv: str):
    return resolve(build_parser(Path("reports")).parse_args(list(argv)))


def test_the_full_run_is_estimated_within_35_minutes_and_quick_within_6():
    assert sum(config().estimate().values()) <= FULL_BUDGET_SECONDS
    assert sum(config("--quick").estimate().values()) <= QUICK_BUDGET_SECONDS


def test_the_default_run_is_the_issues_study():
    full = config()

    assert full.workers == full.drain_workers == (1, 5, 20, 100, 200)
    assert full.provider_limits == (1, 0)
    assert (full.users, full.duration, full.latency) == (20, 60.0, 3.0)
    assert full.ceiling_depths == (0, 1000, 10000)


def test_longer_loads_and_more_workers_are_estimated_longer():
    base = sum(config().estimate().values())

    assert sum(config("--duration", "120").estimate().values()) > base
    assert sum(config("--workers", "1,5,20,100,200,400").estimate().values()) > base


def test_a_machine_or_a_single_process_at_its_ceiling_is_named_as_the_limit():
    busy = CpuShares.from_meter({"wall": 10, "machine": 19, "worker": 5, "locust": 4}, cores=2)
    locust = CpuShares.from_meter({"wall": 10, "machine": 14, "worker": 2, "locust": 9.5}, cores=2)
    web = CpuShares.from_meter({"wall": 10, "machine": 14, "web": 10}, cores=2)  # 2 processes: 1 core is fine
    calm = CpuShares.from_meter({"wall": 10, "machine": 8, "worker": 2}, cores=2)

    assert busy.limit.startswith("machine saturated")
    assert locust.limit.startswith("the load generator (Locust) at its CPU ceiling")
    assert web.limit == calm.limit == ""
    assert calm.other_cores == 0.6


def test_results_round_trip_through_json_into_the_same_dataclasses(tmp_path):
    stats = LocustStats("POST /api/orders/async", 10, 0, 12.0, 13.0, 20.0, 30.0, 40.0, 5.0, {"50%": 12.0})
    cpu = CpuShares.from_meter({"wall": 10, "machine": 8, "worker": 2}, cores=2)
    run = ScalingRun(
        name="w5-l0", workers=5, provider_limit=0, latency=3.0, users=20, duration=60.0, checkout=stats,
        orders=OrderCounts(10, 1, 1, 8, 0), accepted_202=10, incoming_rate=1.0, peak_depth=3, peak_visible=2,
        backlog_at_load_end=2, measured_rate=1.6, ideal_rate=1.67, efficiency=0.96, overhead_ms=100.0,
        drain=Drain("extrapolated", 12.0, 10.0, 2), time_to_paid_p50=3.1, time_to_paid_p95=3.5,
        provider=ProviderSummary(8, 8, 5, 0, 0), cpu=cpu, worker_ready_seconds=2.0, worker_idle_rss_mb=60.0,
        worker_peak_rss_mb=70.0, first_claim=1.0, load_start=0.0, load_end=60.0, stopped_at=70.0,
        drained_at=None,
    )  # fmt: skip
    drain = DrainRun("drain-w5-l0", 5, 0, 3.0, 40, 40, 0, 0, 0, 0, 24.5, 1.63, 1.67, 0.98, 60.0, 5, 70.0,
                     {"worker": 1.0, "wall": 25.0, "machine": 9.0})  # fmt: skip
    parameters = Parameters(**{f.name: _empty(f.type) for f in dataclasses.fields(Parameters)})
    environment = Environment(**{f.name: _empty(f.type) for f in dataclasses.fields(Environment)})
    results = StudyResults(parameters=parameters, environment=environment, scaling=[run], drain=[drain])
    results.dump(tmp_path / "results.json")

    assert StudyResults.load(tmp_path / "results.json") == results


def _empty(hint: object) -> object:
    """A placeholder of the annotated type (the annotations are strings here)."""
    text = str(hint)
    return (
        []
        if text.startswith("list")
        else {}
        if text.startswith("dict")
        else 0
        if text in ("int", "float", "bool")
        else ""
    )
