"""The Locust users' pacing: each user's tasks arrive at random, at its rate on average."""

from __future__ import annotations

import random
import statistics
from itertools import pairwise

import pytest

from loadtests.pacing import next_arrival


def starts(*, rate: float, count: int, answer_seconds: float = 0.0) -> list[float]:
    """When one paced user starts its tasks, each answered in `answer_seconds` (as Locust runs it)."""
    now, previous, times = 100.0, None, []
    for _ in range(count):
        previous = next_arrival(previous, now, rate)
        now = previous + answer_seconds  # Locust waits until the start, then runs the task
        times.append(previous)
    return times


def test_a_users_tasks_arrive_at_its_rate_with_gaps_drawn_afresh():
    random.seed(7)
    times = starts(rate=3.0, count=6000)
    gaps = [b - a for a, b in pairwise(times)]

    assert statistics.mean(gaps) == pytest.approx(1 / 3, rel=0.05)
    # Exponential gaps are as spread as they are long; a fixed period, from any phase, is not spread.
    assert statistics.stdev(gaps) / statistics.mean(gaps) == pytest.approx(1.0, abs=0.1)


def test_a_slow_answer_delays_the_next_task_and_does_not_bunch_the_ones_after():
    random.seed(7)
    times = starts(rate=3.0, count=200, answer_seconds=1.0)  # answers slower than the rate

    gaps = [b - a for a, b in pairwise(times)]
    assert min(gaps) >= 1.0 - 1e-9  # one task at a time: never two at once to catch up
