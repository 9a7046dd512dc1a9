"""The study's presets fit their time budgets by construction, and its results survive results.json."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from loadtests.study.config import FULL_BUDGET_SECONDS, QUICK_BUDGET_SECONDS, build_parser, resolve
from sizing.measure import Drain
from sizing.results import (
    AcceptRun,
    CpuShares,
    DrainRun,
    Environment,
    LocustStats,
    OrderCounts,
    Parameters,
    ProviderSummary,
    SaturationRun,
    ScalingRun,
    StockCheck,
    StudyResults,
    WrkStats,
    saturation_targets,
)  # fmt: skip


def config(*argv: str):
    return resolve(build_parser(Path("reports")).parse_args(list(argv)))


def test_the_full_run_is_estimated_within_42_minutes_and_quick_within_9():
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
    refused = LocustStats("POST /api/orders/async [sold out]", 30, 0, 4.0, 5.0, 9.0, 12.0, 20.0, 10.0)
    sold_out = AcceptRun(
        "PostgreSQL 15", 20, 2, 60.0, stats, stats, 10, cpu, product="sold-out", refusals=refused,
        stock=StockCheck("flash-sneakers", 10, 110, 110, 0, 10, sold_out_after=19.5),
    )  # fmt: skip
    wrk = WrkStats(3000, 15.0, 0, 0, 0, 5.0, 4.0, 8.0, 20.0, 40.0)
    saturation = SaturationRun("hot", "POST", "/api/orders/async", "hot", 16, 2, 15.0, wrk, cpu, orders=3005)
    results = StudyResults(
        parameters=_parameters(), environment=_environment(), scaling=[run], drain=[drain],
        accept=[sold_out], saturation=[saturation],
    )  # fmt: skip
    results.dump(tmp_path / "results.json")

    assert StudyResults.load(tmp_path / "results.json") == results


def test_results_saved_before_the_product_choice_read_back_as_the_unlimited_product(tmp_path):
    stats = LocustStats("POST /api/orders/async", 10, 0, 12.0, 13.0, 20.0, 30.0, 40.0, 5.0)
    cpu = CpuShares.from_meter({"wall": 10, "machine": 8}, cores=2)
    accept = AcceptRun("PostgreSQL 15", 20, 2, 60.0, stats, stats, 10, cpu)
    data = dataclasses.asdict(
        StudyResults(parameters=_parameters(), environment=_environment(), accept=[accept])
    )
    for old in data["accept"]:
        for name in ("product", "refusals", "stock"):
            del old[name]
    for name in ("saturation_seconds", "saturation_connections", "saturation_threads"):
        del data["parameters"][name]
    del data["saturation"]
    (tmp_path / "results.json").write_text(json.dumps(data))

    loaded = StudyResults.load(tmp_path / "results.json")

    assert loaded.accept == [accept]
    assert (loaded.accept[0].product, loaded.accept[0].refusals, loaded.accept[0].stock) == (
        "unlimited",
        None,
        None,
    )
    assert loaded.saturation == [] and loaded.parameters.saturation_seconds == 0


def test_the_stock_check_names_an_oversell_and_a_checkout_answer_without_an_order():
    assert StockCheck("flash", 10, 100, 60, 40, 10).oversold == 0
    assert StockCheck("flash", 10, 100, 61, 40, 11).oversold == 1
    cpu = CpuShares.from_meter({"wall": 10, "machine": 8}, cores=2)
    good = WrkStats(1000, 10.0, 0, 0, 0, 5.0, 4.0, 8.0, 20.0, 40.0)

    def run(wrk: WrkStats, orders: int, product: str = "hot") -> SaturationRun:
        return SaturationRun(
            "hot", "POST", "/api/orders/async", product, 16, 2, 10.0, wrk, cpu, orders=orders
        )

    assert run(good, 1000).problems == run(good, 1016).problems == []
    assert run(good, 990).problems == ["990 orders for 1,000 2xx answers"]  # a 2xx other than 202
    assert run(dataclasses.replace(good, non_2xx=3), 997).problems == ["3 non-2xx answers"]
    assert run(dataclasses.replace(good, socket_errors=2, timeouts=2), 1000).problems == [
        "2 requests unanswered (2 timeouts)"
    ]
    assert run(good, 0, product="").problems == []  # the GET places no order


def test_saturation_is_estimated_and_zero_seconds_skips_it():
    assert config().estimate()["saturation"] > 4 * 3 * 10  # four rounds of three targets
    assert config("--saturation-rounds", "2").estimate()["saturation"] < config().estimate()["saturation"]
    assert config("--saturation-seconds", "0").estimate()["saturation"] == 0
    assert config("--quick").saturation_seconds == 5 and config().saturation_connections == 16
    assert (config("--quick").saturation_rounds, config().saturation_rounds) == (2, 4)


def test_saturation_rounds_must_be_at_least_one():
    with pytest.raises(SystemExit, match="rounds ≥ 1"):
        config("--saturation-rounds", "0")


def test_a_saturation_target_adds_its_rounds_up_and_compares_each_round_with_its_own_get():
    def run(name: str, round_: int, requests: int, seconds: float, machine: float, steal: float, wrk: float):
        cpu = CpuShares.from_meter(
            {"wall": seconds, "machine": machine, "steal": steal, "web": machine - steal - wrk, "wrk": wrk},
            cores=2,
        )
        stats = WrkStats(requests, seconds, 0, 0, 0, 5.0, 4.0, 8.0, 20.0, 40.0)
        product = "" if name == "get" else "unlimited"
        return SaturationRun(name, "GET", "/x", product, 16, 2, seconds, stats, cpu, round=round_)

    # The machine slowed down between the rounds: both targets lost a third of their rate.
    runs = [
        run("get", 1, 3000, 10.0, 19.0, 1.0, 0.5), run("unlimited", 1, 2100, 10.0, 19.0, 1.0, 0.5),
        run("unlimited", 2, 1400, 10.0, 19.0, 5.0, 0.5), run("get", 2, 2000, 10.0, 19.0, 5.0, 0.5),
    ]  # fmt: skip
    get, unlimited = saturation_targets(runs)

    assert [r.round for r in get.runs] == [1, 2] and unlimited.first.name == "unlimited"
    assert get.rate == 5000 / 20 and unlimited.rate == 3500 / 20
    assert unlimited.round_ratios(get) == [0.7, 0.7]  # each round against its own GET
    assert get.cpu.wall == 20 and get.cpu.steal == 6 and get.cpu.steal_cores == 0.3
    assert get.cpu.other_cores == 0  # the stolen time is not the shop's, nor another process's
    # Stolen time and wrk aside: (38 - 6 - 1) CPU seconds over 5,000 answers, and over 3,500.
    assert round(get.stack_ms, 3) == round(31 / 5000 * 1000, 3) == 6.2
    assert round(unlimited.stack_ms, 3) == round(31 / 3500 * 1000, 3)


def _parameters() -> Parameters:
    return Parameters(**{f.name: _empty(f.type) for f in dataclasses.fields(Parameters)})


def _environment() -> Environment:
    return Environment(**{f.name: _empty(f.type) for f in dataclasses.fields(Environment)})


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
