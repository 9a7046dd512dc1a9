"""Phase: the pre-queue shop. Sync checkout at the seed's load, provider limit 1, no workers."""

from __future__ import annotations

from loadtests.study.context import Lab, order_counts, order_rows
from sizing.results import ProviderSummary, SyncRun


def run(lab: Lab) -> SyncRun:
    c = lab.config
    lab.fresh_provider(limit=1)
    meter = lab.meter().start()
    locust = lab.load("sync", ["SyncCheckoutUser"], users=c.users, seconds=c.duration)
    cpu = lab.cpu(meter.stop(), locust)
    provider = ProviderSummary.from_stats(lab.bench.sandbox.stats())
    # Requests Locust gave up on still hold gunicorn threads and provider slots: a new web and a
    # new sandbox keep them (and the 504s' background jobs) out of the next phase.
    lab.empty_queue(restart_web=True)
    lab.write_csv("orders_sync.csv", order_rows("sync"))
    return SyncRun(
        users=c.users,
        duration=c.duration,
        latency=c.latency,
        checkout=locust.stats("POST /api/orders/sync"),
        orders=order_counts("sync"),
        provider=provider,
        cpu=cpu,
    )
