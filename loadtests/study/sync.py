"""Phases: sync checkout at the seed's load (provider limit 1, no workers), without and with the queue.

The first is the pre-queue shop (SYNC_CHECKOUT_QUEUE off): requests wait inside gunicorn and the
provider until the client's 30 s timeout. The second is the same load behind the checkout queue
(orders/checkout_queue.py): customers over the provider's capacity get a 503 `checkout_queue` and
retry after its Retry-After with the same key (SyncQueueCheckoutUser), as the storefront does.
"""

from __future__ import annotations

import time

from loadtests.study.context import Lab, order_counts, order_rows, orders_tagged
from orders.models import OrderStatus
from sizing.results import ProviderSummary, SyncQueueRun, SyncRun

PROVIDER_LIMIT = 1  # the seed's provider: one charge at a time


def run(lab: Lab) -> SyncRun:
    c = lab.config
    lab.fresh_provider(limit=PROVIDER_LIMIT)
    lab.restart_web(SYNC_CHECKOUT_QUEUE="false")  # the pre-queue shop
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


def run_queued(lab: Lab) -> SyncQueueRun:
    c = lab.config
    lab.fresh_provider(limit=PROVIDER_LIMIT)
    # The queue on (the default), told the provider's limit and its time per charge.
    lab.restart_web(
        PAYMENT_PROVIDER_CONCURRENCY=str(PROVIDER_LIMIT), SYNC_CHECKOUT_CHARGE_SECONDS=f"{c.latency:g}"
    )
    meter = lab.meter().start()
    locust = lab.load("sync-queue", ["SyncQueueCheckoutUser"], users=c.users, seconds=c.duration)
    cpu = lab.cpu(meter.stop(), locust)
    # The checkouts admitted before the load stopped finish their charges (at most the one charging
    # and the one on deck): their orders count in the goodput.
    lab.provider_idle(timeout=2 * c.latency + 5)
    _recorded("sync-queue", timeout=c.latency + 5)
    provider = ProviderSummary.from_stats(lab.bench.sandbox.stats())
    rows, counts = order_rows("sync-queue"), order_counts("sync-queue")  # one state of the orders
    lab.write_csv("orders_sync-queue.csv", rows)
    lab.empty_queue(restart_web=True)
    paid = [r for r in rows if r["status"] == "paid" and r["claimed_at"] is not None]
    first_claim = min((r["claimed_at"] for r in paid), default=0.0)
    last_paid = max((r["paid_at"] for r in paid), default=0.0)
    return SyncQueueRun(
        users=c.users,
        duration=c.duration,
        latency=c.latency,
        provider_limit=PROVIDER_LIMIT,
        checkout=locust.stats("POST /api/orders/sync", exact=True),
        queued=locust.stats("POST /api/orders/sync [checkout_queue]", exact=True),
        waits=locust.stats("first try → final answer", exact=True),
        past_timeout=locust.stats("POST /api/orders/sync [past timeout]", exact=True).requests,
        orders=counts,
        provider=provider,
        cpu=cpu,
        paid_seconds=round(last_paid - first_claim, 3) if paid else 0.0,
        paid=len(paid),
    )


def _recorded(tag: str, *, timeout: float) -> None:
    """Wait until none of the run's orders is being charged: the web records a charge after the
    provider answers, so an idle provider can still leave one order a moment from `paid`."""
    deadline = time.monotonic() + timeout
    while orders_tagged(tag).filter(status=OrderStatus.PROCESSING).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
