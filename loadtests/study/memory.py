"""Phase: worker memory, prefork vs threads at one pool size, under the same burst (no provider limit)."""

from __future__ import annotations

import math
import time

from loadtests.bench import POLL_SECONDS
from loadtests.instruments import discard, post_orders, tree_memory, wait_for_log
from loadtests.study.context import Lab, order_counts
from sizing.results import MemoryRun


def run(lab: Lab, *, pool: str) -> MemoryRun:
    c = lab.config
    tag = f"mem-{pool}-{c.prefork}"
    lab.fresh_provider(limit=0)
    worker = lab.bench.stack.start_worker(f"worker-{tag}", concurrency=c.prefork, pool=pool)
    wait_for_log(worker, " ready.", timeout=120)
    time.sleep(1)  # prefork children finish importing after "ready"
    idle = tree_memory(worker.pid)
    count = 3 * c.prefork
    lab.progress.status(f"{pool}: {count} orders")
    accepted = post_orders(lab.host, tag, count, skus=lab.skus)
    peak = dict(idle)
    deadline = time.monotonic() + 3 * c.latency * math.ceil(count / c.prefork) + 30
    while time.monotonic() < deadline:
        now = tree_memory(worker.pid)
        peak = {k: max(peak[k], now[k]) for k in peak}
        counts = order_counts(tag)
        if counts.paid + counts.failed >= accepted:
            break
        time.sleep(0.3)
    discard(lab.bench.stack, worker)
    time.sleep(POLL_SECONDS + 0.5)
    lab.empty_queue()
    return MemoryRun(
        pool=pool,
        concurrency=c.prefork,
        orders=accepted,
        paid=order_counts(tag).paid,
        idle_rss_mb=round(idle["rss_mb"], 1),
        peak_rss_mb=round(peak["rss_mb"], 1),
        peak_pss_mb=round(peak["pss_mb"], 1),
        processes=int(peak["processes"]),
    )
