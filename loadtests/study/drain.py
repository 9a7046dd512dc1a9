"""Phase: the drain study (loadtests/drain/study.run) at each provider limit and N, on the study's bench.

K = min(N, limit) x waves orders (fewer waves with the provider limited) are queued before N
worker threads start (one process up to `drain_threads`, then several of equal size): pure worker
efficiency, no load generator. Each run's orders are written out (orders_<name>.csv) so that the
figures can be recomputed from the raw timings.
"""

from __future__ import annotations

from loadtests.drain.study import processes_for
from loadtests.drain.study import run as drain_run
from loadtests.study.context import Lab, order_rows
from sizing.results import DrainRun


def run(lab: Lab, *, workers: int, limit: int) -> DrainRun:
    c = lab.config
    # The drain study resets the sandbox's knobs and ledger itself (its limit, its latency).
    result = drain_run(
        lab.bench, workers=workers, limit=limit, latency=c.latency,
        waves=c.drain_limited_waves if limit else c.drain_waves,
        processes=processes_for(workers, c.drain_threads),
    )  # fmt: skip
    lab.write_csv(f"orders_{result.name}.csv", order_rows(result.name))
    if result.paid + result.failed < result.orders:  # stopped at its deadline: jobs may be left in SQS
        lab.empty_queue()
    return result
