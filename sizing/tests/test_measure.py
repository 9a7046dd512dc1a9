"""The derived figures: processing rate, drain time, the sizing formula."""

import math

import pytest

from sizing.measure import drain_time, percentile, processing_rate
from sizing.workers import Sizing, ideal_rate


def test_processing_rate_counts_from_the_first_claim_to_the_end():
    assert processing_rate(paid=30, first_claim=100.0, end=110.0) == pytest.approx(3.0)


def test_processing_rate_is_zero_when_nothing_was_paid_or_no_time_passed():
    assert processing_rate(paid=0, first_claim=100.0, end=110.0) == 0.0
    assert processing_rate(paid=5, first_claim=None, end=110.0) == 0.0
    assert processing_rate(paid=5, first_claim=110.0, end=110.0) == 0.0


def test_a_queue_that_emptied_has_a_measured_drain_from_the_end_of_the_load():
    drain = drain_time(load_end=100.0, drained_at=112.5, stopped_at=113.0, remaining=0, rate=4.0)

    assert drain.kind == "measured"
    assert drain.seconds == pytest.approx(12.5)
    assert drain.label == "12 s"


def test_a_queue_still_full_at_the_cap_is_extrapolated_from_the_measured_rate_and_labelled_so():
    drain = drain_time(load_end=100.0, drained_at=None, stopped_at=160.0, remaining=3_000, rate=0.25)

    assert drain.kind == "extrapolated"
    assert drain.seconds == pytest.approx(60 + 3_000 / 0.25)
    assert drain.label == "3.4 h (extrapolated)"


def test_nothing_paid_means_the_queue_never_drains():
    drain = drain_time(load_end=100.0, drained_at=None, stopped_at=110.0, remaining=10, rate=0.0)

    assert drain.seconds is None
    assert drain.label.startswith("never")


def test_percentile_interpolates_between_ranks():
    assert percentile([1, 2, 3, 4], 50) == pytest.approx(2.5)
    assert percentile([], 99) == 0.0


@pytest.mark.parametrize(
    ("workers", "limit", "expected"),
    [(1, 0, 1 / 3), (100, 0, 100 / 3), (100, 1, 1 / 3), (5, 20, 5 / 3)],
)
def test_ideal_rate_is_workers_over_latency_capped_by_the_provider(workers, limit, expected):
    assert ideal_rate(workers, latency=3.0, provider_limit=limit) == pytest.approx(expected)


def test_sizing_rounds_up_and_applies_the_efficiency():
    sizing = Sizing(rate=60, latency=3.0, provider_limit=0, efficiency=0.8)

    assert sizing.ideal_workers == 180
    assert sizing.workers == math.ceil(180 / 0.8)
    assert sizing.provider_ceiling is None and sizing.reachable


def test_a_limit_one_provider_cannot_reach_the_seeds_target():
    sizing = Sizing(rate=60, latency=3.0, provider_limit=1, efficiency=1.0)

    assert sizing.provider_ceiling == pytest.approx(1 / 3)
    assert not sizing.reachable
