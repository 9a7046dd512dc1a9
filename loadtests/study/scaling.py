"""Phase: worker scaling under the seed's flash-sale load (Locust, 20 users x 60 s), then the drain watched.

Each run: a fresh sandbox at the provider limit, one worker of N threads, the load with the
queue sampled every second, then the queue watched until the run's orders are final or the cap
passes; CPU is metered per process tree (Locust included) over load and drain.
"""

from __future__ import annotations

import time

from loadtests.bench import POLL_SECONDS
from loadtests.instruments import Sampler, discard, tree_memory, wait_for_log
from loadtests.study.context import Lab, counts_row, order_counts, order_rows, watch_drain
from sizing import measure
from sizing.results import ProviderSummary, ScalingRun
from sizing.workers import ideal_rate


def run(lab: Lab, *, workers: int, limit: int) -> ScalingRun:
    c = lab.config
    name = f"w{workers}-l{limit}"
    lab.fresh_provider(limit=limit)
    worker = lab.bench.stack.start_worker(f"worker-{name}", concurrency=workers)
    ready_seconds = wait_for_log(worker, " ready.", timeout=120)
    idle_rss = tree_memory(worker.pid)["rss_mb"]
    sampler = Sampler(lab.queue, lambda: counts_row(name), worker_pid=worker.pid)
    meter = lab.meter(worker=worker.pid).start()
    locust = lab.load(name, ["AsyncCheckoutUser"], users=c.users, seconds=c.duration, sampler=sampler)
    load_stopped = time.time()
    drained_at = watch_drain(lab, name, since=load_stopped, cap=c.drain_cap)
    samples = sampler.stop()
    cpu = lab.cpu(meter.stop(), locust)
    discard(lab.bench.stack, worker)  # what is not final now stays open: the figures below agree
    stopped_at = time.time()
    rows, counts = order_rows(name), order_counts(name)
    if drained_at is None and counts.open == 0:  # the last ones finished while the watch was ending
        drained_at = max(r["final_at"] for r in rows if r["final_at"])
    provider = ProviderSummary.from_stats(lab.bench.sandbox.stats())
    time.sleep(POLL_SECONDS + 0.5)  # the killed worker's last long poll runs out before the queue is emptied
    lab.empty_queue()

    created = [r["created_at"] for r in rows]
    load_start, load_end = (min(created), max(created)) if created else (locust.started_at, locust.started_at)
    paid = [r for r in rows if r["status"] == "paid"]
    first_claim = min((r["claimed_at"] for r in rows if r["claimed_at"] is not None), default=None)
    end = drained_at if drained_at is not None else stopped_at
    rate = measure.processing_rate(paid=len(paid), first_claim=first_claim, end=end)
    ideal = ideal_rate(workers, latency=c.latency, provider_limit=limit)
    slots = min(workers, limit) if limit else workers
    busy = end - first_claim if first_claim is not None else 0.0
    checkout = locust.stats("POST /api/orders/async")
    to_paid = [r["paid_at"] - r["created_at"] for r in paid]
    lab.write_csv(f"samples_{name}.csv", [{**s, "t": round(s["at"] - load_start, 2)} for s in samples])
    lab.write_csv(f"orders_{name}.csv", rows)
    return ScalingRun(
        name=name,
        workers=workers,
        provider_limit=limit,
        latency=c.latency,
        users=c.users,
        duration=c.duration,
        checkout=checkout,
        orders=counts,
        accepted_202=checkout.requests - checkout.failures,
        incoming_rate=len(rows) / (load_end - load_start) if load_end > load_start else 0.0,
        peak_depth=max((s["total"] for s in samples), default=0),
        peak_visible=max((s["visible"] for s in samples), default=0),
        backlog_at_load_end=sum(1 for r in rows if r["final_at"] is None or r["final_at"] > load_end),
        measured_rate=rate,
        ideal_rate=ideal,
        efficiency=measure.efficiency(rate, ideal),
        overhead_ms=(busy * slots / len(paid) - c.latency) * 1000 if paid else 0.0,
        drain=measure.drain_time(
            load_end=load_end, drained_at=drained_at, stopped_at=stopped_at, remaining=counts.open, rate=rate
        ),
        time_to_paid_p50=measure.percentile(to_paid, 50),
        time_to_paid_p95=measure.percentile(to_paid, 95),
        provider=provider,
        cpu=cpu,
        worker_ready_seconds=round(ready_seconds, 1),
        worker_idle_rss_mb=idle_rss,
        worker_peak_rss_mb=max((s.get("worker_rss_mb", 0.0) for s in samples), default=0.0),
        first_claim=first_claim,
        load_start=load_start,
        load_end=load_end,
        stopped_at=stopped_at,
        drained_at=drained_at,
    )
