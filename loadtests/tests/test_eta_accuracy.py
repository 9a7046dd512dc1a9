"""The ETA accuracy figures: each read's error, their groups, and the report's section (no database)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from loadtests.report import render
from loadtests.tests.test_study_config import _environment, _parameters, config
from sizing.results import (
    EtaRead,
    EtaRun,
    OrderCounts,
    StudyResults,
    eta_error,
    eta_groups,
    eta_shrinks,
)


def read(order: str, read_at: float, eta: int | None, *, position: int | None = 5, nth: int = 0) -> EtaRead:
    status = "accepted" if position is not None else "paid"
    return EtaRead(order, created_at=read_at - 0.5, read_at=read_at, nth=nth, status=status,
                   position=position, eta_seconds=eta)  # fmt: skip


def test_the_error_is_the_predicted_paid_time_minus_the_actual_one():
    assert eta_error(read("a", 100.0, 30), paid_at=120.0) == 10.0  # said 130, paid at 120: 10 s late
    assert eta_error(read("a", 100.0, 30), paid_at=145.0) == -15.0  # said 130, paid at 145: 15 s early
    assert eta_error(read("a", 100.0, None), paid_at=145.0) is None  # no ETA, no error
    assert eta_error(read("a", 100.0, 30), paid_at=None) is None  # never paid


def test_a_group_counts_reads_without_an_eta_and_orders_never_paid_apart_from_its_figures():
    reads = [
        read("a", 0.0, 10),  # paid at 8: error +2, actual 8, relative 0.25
        read("b", 0.0, 20),  # paid at 25: error -5, actual 25, relative 0.2
        read("c", 1.0, 5),  # paid at 2: error +4, actual 1, relative 4
        read("d", 0.0, None),  # no payment in the window yet
        read("e", 0.0, 7),  # failed: never paid
        read("f", 0.0, None, position=None),  # already final: not waiting, not in the group
    ]
    paid = {"a": 8.0, "b": 25.0, "c": 2.0, "d": 30.0, "e": None, "f": 0.2}

    (first, *_) = eta_groups(reads, paid, first_paid_at=None, window=60)

    assert (first.group, first.reads, first.no_eta, first.not_paid, first.measured) == ("first", 5, 1, 1, 3)
    assert first.median_abs_error == 4.0  # |errors| 2, 4, 5
    assert first.p90_abs_error == pytest.approx(4.8)  # linear between the 2nd and 3rd: 4 + 0.8 × 1
    assert first.median_error == 2.0  # signed: -5, 2, 4
    assert first.median_relative_error == 0.25  # 0.2, 0.25, 4
    assert first.p90_relative_error == pytest.approx(0.25 + 0.8 * 3.75)
    assert (first.median_actual, first.median_predicted) == (8.0, 10.0)
    assert (first.position_min, first.position_max) == (5, 5)


def test_the_first_reads_split_into_equal_thirds_by_position_and_the_reads_by_the_rates_first_minute():
    # Nine samples at positions 0..80; each order is paid exactly when its ETA said, but one: i = 8.
    first = [read(f"o{i}", float(i), 10 + i, position=10 * i) for i in range(9)]
    later = [read("o8", 70.0, 5, position=3, nth=1)]  # said 70 + 5 = 75, paid at 80: 5 s early
    paid = {f"o{i}": i + 10.0 + i for i in range(8)} | {"o8": 80.0}

    groups = eta_groups(first + later, paid, first_paid_at=5.0, window=60)

    assert [(g.group, g.reads) for g in groups] == [
        ("first", 9), ("position", 3), ("position", 3), ("position", 3), ("later", 1),
        ("window", 9), ("window", 1),
    ]  # fmt: skip
    near, middle, far = groups[1:4]
    assert near.label == "first read, near third of the line (positions 0–20)"
    assert (middle.position_min, middle.position_max, far.position_max) == (30, 50, 80)
    assert near.median_abs_error == middle.median_abs_error == 0.0
    assert far.median_error == 0.0 and far.p90_abs_error == pytest.approx(0.8 * 54)  # o8: said 26, paid 80
    assert groups[4].median_error == -5.0
    # Reads before 5 + 60 s are in the rate's first minute; the later read (at 70 s) is after it.
    assert groups[5].label == "every read, in the first 60 s of payments"
    assert (
        groups[6].label == "every read, after the first 60 s of payments" and groups[6].median_error == -5.0
    )


def test_without_a_payment_there_are_no_window_rows_and_empty_groups_have_zero_figures():
    groups = eta_groups([read("a", 0.0, None)], {"a": None}, first_paid_at=None, window=60)

    assert [g.group for g in groups] == ["first", "later"]
    assert groups[0].no_eta == 1 and groups[0].measured == 0 and groups[0].median_abs_error == 0.0


def test_an_eta_shrinking_is_counted_between_an_orders_consecutive_reads_with_an_eta():
    reads = [
        read("a", 0.0, 40), read("a", 5.0, 30, nth=1), read("a", 10.0, 31, nth=2),  # shrank, grew
        read("b", 0.0, None), read("b", 5.0, 20, nth=1), read("b", 10.0, 10, nth=2),  # one pair: shrank
    ]  # fmt: skip

    assert eta_shrinks(reads) == (2, 3)


def eta_run(**changes) -> EtaRun:
    reads = [read(f"o{i}", float(i), 30 + i, position=10 * i) for i in range(6)] + [read("n", 0.0, None)]
    paid = {f"o{i}": 20.0 + 3 * i for i in range(6)} | {"n": 9.0}
    run = EtaRun(
        name="eta-w20-l0", workers=20, provider_limit=0, latency=1.0, users=20, duration=10.0,
        orders=OrderCounts(600, 0, 0, 600, 0), every=6, reread_seconds=5.0, rate_window_seconds=60.0,
        sampled=7, reads=7, read_errors=0, first_read_delay_p50=0.4, waiting_before=0,
        paid_last_minute_before=0, first_paid_at=1.5, peak_position=50, shrank=0, eta_pairs=0,
        load_start=0.0, load_end=10.0, stopped_at=40.0, drained_at=35.0,
        groups=eta_groups(reads, paid, first_paid_at=1.5, window=60),
    )  # fmt: skip
    return dataclasses.replace(run, **changes)


def test_the_eta_run_survives_results_json_and_a_file_from_before_it_reads_back_without_one(tmp_path):
    results = StudyResults(parameters=_parameters(), environment=_environment(), eta=eta_run())
    results.dump(tmp_path / "results.json")

    assert StudyResults.load(tmp_path / "results.json") == results

    data = dataclasses.asdict(results)
    del data["eta"]
    for name in ("eta_workers", "eta_duration", "eta_samples", "eta_reread"):
        del data["parameters"][name]
    (tmp_path / "results.json").write_text(json.dumps(data))
    loaded = StudyResults.load(tmp_path / "results.json")
    assert loaded.eta is None and loaded.parameters.eta_workers == 0


def test_the_report_gives_the_first_reads_median_and_p90_error_and_says_what_had_no_eta(tmp_path: Path):
    run = eta_run()
    text = render(StudyResults(parameters=_parameters(), environment=_environment(), eta=run), {}, tmp_path)
    section = text.split("## 11. The place in line: its ETA against the actual paid time", 1)[1]
    section = section.split("## Data files", 1)[0]
    first = run.first

    # o0..o5: read at i saying 30 + i, so paid at 30 + 2i; paid at 20 + 3i: 10, 9, 8, 7, 6, 5 s late.
    assert first is not None and (first.measured, first.no_eta) == (6, 1)
    assert first.median_abs_error == 7.5 and first.median_error == 7.5
    assert (
        "| first read after accept | 7 | 1 | 0 | 6 | **7.5 s** | **9.5 s** | +7.5 s | "
        f"{first.median_relative_error:.0%} / {first.p90_relative_error:.0%} |"
    ) in section
    assert "| first read, far third of the line (positions 30–50) | 3 | 0 | 0 | 3 |" in section
    assert "One order in 6 by arrival (7 orders)" in section
    assert "- 1 of 7 first reads had no ETA" in section
    assert (
        "- The run: 600 orders (60.0/s), 600 paid, 0 failed; drained 25 s after the load's last order"
        in section
    )
    assert "0 orders of earlier runs waited in line and 0 had been paid in the last 60 s" in section


def test_a_run_not_drained_says_so_and_a_report_without_an_eta_run_has_no_section(tmp_path: Path):
    open_run = eta_run(drained_at=None, orders=OrderCounts(600, 40, 2, 558, 0))
    text = render(
        StudyResults(parameters=_parameters(), environment=_environment(), eta=open_run), {}, tmp_path
    )

    assert "**not drained**: 42 orders still open when the watch stopped" in text
    assert "## 11." not in render(
        StudyResults(parameters=_parameters(), environment=_environment()), {}, tmp_path
    )


def test_the_eta_run_is_estimated_and_zero_workers_skips_it():
    quick = config("--quick")

    assert quick.eta_workers == 20 and quick.eta_duration == 10 and quick.eta_samples == 100
    assert quick.estimate()["eta accuracy"] > quick.eta_duration + quick.eta_drain
    assert config("--eta-workers", "0").estimate()["eta accuracy"] == 0
    assert sum(config("--eta-duration", "120").estimate().values()) > sum(config().estimate().values())
