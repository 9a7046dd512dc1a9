"""`manage.py recommend_workers`: the seed's formula, the provider caveat, a report's efficiency.

Every report here is a results.json the lab's own writer made (`StudyResults.dump`) from the lab's
own dataclasses (sizing/results.py), and the command reads it back through `StudyResults.load`:
the round trip the lab, the report and `python -m deploy` share.
"""

from __future__ import annotations

import dataclasses
import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from sizing.measure import Drain
from sizing.results import (
    CpuShares,
    DrainRun,
    Environment,
    LocustStats,
    OrderCounts,
    Parameters,
    ProviderSummary,
    ScalingRun,
    StudyResults,
)

LATENCY = 3.0


def ideal(workers: int, provider_limit: int) -> float:
    return (min(workers, provider_limit) if provider_limit else workers) / LATENCY


def scaling(*, workers: int, provider_limit: int, efficiency: float) -> ScalingRun:
    """A flash-sale scaling run, as loadtests/study/scaling.py makes one."""
    stats = LocustStats("POST /api/orders/async", 100, 0, 12.0, 13.0, 20.0, 30.0, 40.0, 5.0)
    rate = ideal(workers, provider_limit) * efficiency
    return ScalingRun(
        name=f"w{workers}-l{provider_limit}", workers=workers, provider_limit=provider_limit, latency=LATENCY,
        users=20, duration=60.0, checkout=stats, orders=OrderCounts(100, 0, 0, 100, 0), accepted_202=100,
        incoming_rate=1.7, peak_depth=50, peak_visible=40, backlog_at_load_end=40, measured_rate=rate,
        ideal_rate=ideal(workers, provider_limit), efficiency=efficiency, overhead_ms=90.0,
        drain=Drain("measured", 12.0, 20.0, 0), time_to_paid_p50=3.1, time_to_paid_p95=3.5,
        provider=ProviderSummary(100, 100, workers, 0, 0),
        cpu=CpuShares.from_meter({"wall": 80, "machine": 60, "worker": 9}, cores=2),
        worker_ready_seconds=2.0, worker_idle_rss_mb=60.0, worker_peak_rss_mb=70.0, first_claim=1.0,
        load_start=0.0, load_end=60.0, stopped_at=80.0, drained_at=72.0,
    )  # fmt: skip


def drain(
    *, workers: int, provider_limit: int, efficiency: float, task_errors: int = 0, processes: int = 1
) -> DrainRun:
    """A drain-study run, as loadtests/study/drain.py makes one."""
    rate = ideal(workers, provider_limit) * efficiency
    return DrainRun(
        name=f"drain-w{workers}-l{provider_limit}" + (f"-p{processes}" if processes > 1 else ""),
        workers=workers, provider_limit=provider_limit, latency=LATENCY, orders=workers * 8,
        paid=workers * 8, failed=0, charged_twice=0, not_charged=0, task_errors=task_errors,
        seconds=workers * 8 / rate, rate=rate, ideal_rate=ideal(workers, provider_limit),
        efficiency=efficiency, overhead_ms=40.0, provider_peak=min(workers, provider_limit or workers),
        worker_rss_mb=80.0,
        cpu_seconds={"worker": 3.1, "machine": 9.0, "wall": 25.1}, processes=processes,
    )  # fmt: skip


def placeholder(cls: type) -> object:
    """The run's parameters and environment: recommend reads neither."""
    empty = {"list": [], "dict": {}, "int": 0, "float": 0.0, "bool": False}
    return cls(**{f.name: empty.get(str(f.type).split("[")[0], "") for f in dataclasses.fields(cls)})


def lab_report(folder: Path, **runs: list) -> Path:
    """A report folder with the results.json the lab writes, and the same results read back."""
    results = StudyResults(parameters=placeholder(Parameters), environment=placeholder(Environment), **runs)
    folder.mkdir(parents=True, exist_ok=True)
    results.dump(folder / "results.json")
    assert StudyResults.load(folder) == results  # the round trip the command relies on
    return folder


def recommend(*args: str) -> str:
    out = StringIO()
    call_command("recommend_workers", *args, stdout=out)
    return out.getvalue()


def test_the_seeds_flash_sale_needs_rate_times_latency_workers():
    output = recommend("--rate", "60", "--latency", "3", "--provider-limit", "0")

    assert "workers = rate × latency = 60 × 3 = 180" in output
    assert "Recommended workers: 180" in output
    assert "Caveat" not in output


def test_a_one_at_a_time_provider_is_called_out_as_the_real_limit():
    output = recommend("--rate", "60", "--latency", "3", "--provider-limit", "1")

    assert "Recommended workers: 180" in output
    assert "at most 0.33 orders/s whatever the worker count" in output
    assert "out of reach" in output


def test_a_rate_within_the_providers_limit_is_reachable():
    output = recommend("--rate", "2", "--latency", "3", "--provider-limit", "10")

    assert "Recommended workers: 6" in output
    assert "2/s is within it" in output


def test_a_reports_measured_efficiency_at_the_nearest_worker_count_raises_the_recommendation(tmp_path):
    report = lab_report(
        tmp_path,
        scaling=[
            scaling(workers=5, provider_limit=0, efficiency=0.9),
            scaling(workers=100, provider_limit=0, efficiency=0.5),
            scaling(workers=100, provider_limit=1, efficiency=0.01),  # provider-bound: not the workers' own
        ],
    )

    output = recommend("--rate", "60", "--latency", "3", "--provider-limit", "0", "--report", str(report))

    assert "Efficiency 0.50 (measured at 100 threads in one process (flash-sale scaling)" in output
    assert "Recommended workers: 360" in output


def test_the_drain_studys_efficiency_is_preferred_to_the_flash_sale_runs(tmp_path):
    report = lab_report(
        tmp_path,
        drain=[
            drain(workers=200, provider_limit=0, efficiency=0.8, processes=4),
            drain(workers=200, provider_limit=1, efficiency=0.005),  # provider-bound
        ],
        scaling=[scaling(workers=200, provider_limit=0, efficiency=0.4)],  # shares the CPU with Locust
    )

    output = recommend(
        "--rate", "60", "--latency", "3", "--provider-limit", "0", "--report", str(report / "results.json")
    )

    assert "Efficiency 0.80 (measured at 200 threads in 4 processes × 50 (drain study)" in output
    assert "Recommended workers: 225" in output


def test_a_drain_run_with_task_errors_does_not_count_and_the_scaling_runs_are_the_fallback(tmp_path):
    report = lab_report(
        tmp_path,
        drain=[drain(workers=200, provider_limit=0, efficiency=0.9, task_errors=3)],
        scaling=[scaling(workers=100, provider_limit=0, efficiency=0.5)],
    )

    output = recommend("--rate", "60", "--latency", "3", "--provider-limit", "0", "--report", str(report))

    assert "Efficiency 0.50 (measured at 100 threads in one process (flash-sale scaling)" in output


def test_latest_is_the_newest_report_folder(tmp_path, settings):
    settings.BASE_DIR = tmp_path
    lab_report(
        tmp_path / "reports" / "20260101-000000", drain=[drain(workers=20, provider_limit=0, efficiency=0.5)]
    )
    lab_report(
        tmp_path / "reports" / "20260102-000000", drain=[drain(workers=20, provider_limit=0, efficiency=0.9)]
    )

    output = recommend("--rate", "60", "--latency", "3", "--provider-limit", "0", "--report", "latest")

    assert "Efficiency 0.90" in output and "20260102-000000" in output


def test_a_results_file_of_another_schema_is_refused(tmp_path):
    report = lab_report(tmp_path)
    data = json.loads((report / "results.json").read_text())
    (report / "results.json").write_text(json.dumps({**data, "schema": 3}))

    with pytest.raises(CommandError, match="results schema 3"):
        recommend("--rate", "60", "--report", str(report))


def test_a_file_that_is_not_the_dataclasses_json_is_refused(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"scaling": [{"workers": 5, "efficiency": 0.9}]}))

    with pytest.raises(CommandError, match="not a results file of schema 1"):
        recommend("--rate", "60", "--report", str(tmp_path))


def test_a_report_without_unlimited_runs_is_refused(tmp_path):
    report = lab_report(tmp_path, drain=[drain(workers=20, provider_limit=1, efficiency=0.01)])

    with pytest.raises(CommandError, match="no worker-scaling run without a provider limit"):
        recommend("--rate", "60", "--report", str(report))


def test_nonsense_rates_are_refused():
    with pytest.raises(CommandError):
        recommend("--rate", "0")
