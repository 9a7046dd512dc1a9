"""`manage.py recommend_workers`: the seed's formula, the provider caveat, a report's efficiency."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command


def run(*, workers: int, provider_limit: int, efficiency: float) -> dict:
    """A scaling run as sizing/results.py documents it."""
    ideal = (min(workers, provider_limit) if provider_limit else workers) / 3.0
    return {
        "name": f"w{workers}-l{provider_limit}",
        "workers": workers,
        "provider_limit": provider_limit,
        "latency": 3.0,
        "measured_rate": ideal * efficiency,
        "ideal_rate": ideal,
        "efficiency": efficiency,
    }


def drain(
    *, workers: int, provider_limit: int, efficiency: float, task_errors: int = 0, processes: int = 1
) -> dict:
    """A drain-study run as sizing/results.py documents it."""
    ideal = (min(workers, provider_limit) if provider_limit else workers) / 3.0
    return {
        "name": f"drain-w{workers}-l{provider_limit}",
        "workers": workers,
        "processes": processes,
        "provider_limit": provider_limit,
        "latency": 3.0,
        "rate": ideal * efficiency,
        "ideal_rate": ideal,
        "efficiency": efficiency,
        "task_errors": task_errors,
        "charged_twice": 0,
    }


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
    results = {  # schema 1 (before the drain study) is still read
        "schema": 1,
        "scaling": [
            run(workers=5, provider_limit=0, efficiency=0.9),
            run(workers=100, provider_limit=0, efficiency=0.5),
            run(workers=100, provider_limit=1, efficiency=0.01),  # provider-bound: not the workers' own
        ],
    }
    (tmp_path / "results.json").write_text(json.dumps(results))

    output = recommend("--rate", "60", "--latency", "3", "--provider-limit", "0", "--report", str(tmp_path))

    assert "Efficiency 0.50 (measured at 100 threads in one process" in output
    assert "Recommended workers: 360" in output


def test_the_drain_studys_efficiency_is_preferred_to_the_flash_sale_runs(tmp_path):
    results = {
        "schema": 2,
        "drain": [
            drain(workers=200, provider_limit=0, efficiency=0.8, processes=4),
            drain(workers=200, provider_limit=1, efficiency=0.005),  # provider-bound
        ],
        "scaling": [run(workers=200, provider_limit=0, efficiency=0.4)],  # shares the CPU with Locust
    }
    (tmp_path / "results.json").write_text(json.dumps(results))

    output = recommend("--rate", "60", "--latency", "3", "--provider-limit", "0", "--report", str(tmp_path))

    assert "Efficiency 0.80 (measured at 200 threads in 4 processes × 50 (drain study)" in output
    assert "Recommended workers: 225" in output


def test_a_drain_run_with_task_errors_does_not_count_and_the_scaling_runs_are_the_fallback(tmp_path):
    results = {
        "schema": 2,
        "drain": [drain(workers=200, provider_limit=0, efficiency=0.9, task_errors=3)],
        "scaling": [run(workers=100, provider_limit=0, efficiency=0.5)],
    }
    (tmp_path / "results.json").write_text(json.dumps(results))

    output = recommend("--rate", "60", "--latency", "3", "--provider-limit", "0", "--report", str(tmp_path))

    assert "Efficiency 0.50 (measured at 100 threads in one process (flash-sale scaling)" in output


def test_a_results_file_of_another_schema_is_refused(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"schema": 3, "scaling": []}))

    with pytest.raises(CommandError, match="results schema 3"):
        recommend("--rate", "60", "--report", str(tmp_path))


def test_a_scaling_run_without_a_documented_field_is_refused(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"scaling": [{"workers": 5, "efficiency": 0.9}]}))

    with pytest.raises(CommandError, match="lacks a documented field"):
        recommend("--rate", "60", "--report", str(tmp_path))


def test_a_report_without_unlimited_runs_is_refused(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"scaling": []}))

    with pytest.raises(CommandError, match="no worker-scaling run without a provider limit"):
        recommend("--rate", "60", "--report", str(tmp_path))


def test_nonsense_rates_are_refused():
    with pytest.raises(CommandError):
        recommend("--rate", "0")
