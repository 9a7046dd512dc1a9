"""The drain study's options: N threads in one worker process, or split evenly over several."""

import pytest

from sizing.results import DrainRun


def drain_run(**overrides) -> DrainRun:
    fields = dict(
        name="drain-w200-l0-p2", workers=200, provider_limit=0, latency=3.0, orders=1600, paid=1600, failed=0,
        charged_twice=0, not_charged=0, task_errors=0, seconds=26.0, rate=61.5, ideal_rate=66.67,
        efficiency=0.92, overhead_ms=250.0, provider_peak=200, worker_rss_mb=300.0,
    )  # fmt: skip
    return DrainRun(**{**fields, **overrides})


def test_a_split_run_names_its_layout_and_a_single_process_run_does_not():
    assert drain_run(processes=2).line.startswith("N=200 (2×100) limit none")
    assert drain_run(processes=1).line.startswith("N=200  limit none")


def test_a_run_from_before_the_split_reads_as_one_process():
    assert drain_run().processes == 1


@pytest.mark.parametrize("workers, processes", [(5, 2), (200, 0), (200, 3)])
def test_threads_that_do_not_split_evenly_are_refused_before_anything_runs(workers, processes):
    from loadtests.study.drain import drain as run  # needs Django's apps: loaded by the test session

    with pytest.raises(ValueError, match="split evenly"):
        run(None, workers=workers, limit=0, latency=3.0, waves=1, processes=processes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "workers, most_threads, processes",
    [
        (1, 50, 1),
        (20, 50, 1),
        (50, 50, 1),
        (100, 50, 2),
        (200, 50, 4),
        (120, 50, 3),
        (7, 3, 7),
        (200, 20, 10),
    ],
)
def test_the_lab_splits_n_into_the_fewest_even_processes_within_the_thread_cap(
    workers, most_threads, processes
):
    from loadtests.study.drain import processes_for

    assert processes_for(workers, most_threads) == processes
    assert workers % processes == 0 and workers // processes <= most_threads
