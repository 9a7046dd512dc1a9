"""Getting payment jobs out: now, or after the response, and flagging the orders whose job did not.

The order row is the outbox: `enqueued_at` says a job went out, null says the sweeper must publish
it (`orders.recovery`). Accepts hand their order id to `orders.outbox`, which publishes in batches
after the response, so that the 202 never waits for the broker.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from django.conf import settings

from . import jobs
from .models import Order
from .outbox import BATCH_SIZE, Outbox


def publish_payment_jobs(order_ids: Sequence[uuid.UUID]) -> int:
    """Publish the orders' payment jobs, in batches; flag the ones the broker refused. Returns those."""
    refused: list[uuid.UUID] = []
    for start in range(0, len(order_ids), BATCH_SIZE):
        refused += jobs.payment_jobs().publish(order_ids[start : start + BATCH_SIZE])
    if refused:
        Order.objects.filter(pk__in=refused).update(enqueued_at=None)
    return len(refused)


def publish_payment_job(order_id: uuid.UUID) -> bool:
    """Publish one order's payment job now; False (and the order flagged) if the broker refused it."""
    return publish_payment_jobs([order_id]) == 0


_outbox = Outbox(
    publish_payment_jobs,
    max_pending=lambda: settings.OUTBOX_MAX_PENDING,
    linger=lambda: settings.OUTBOX_LINGER_SECONDS,
)


def publish_in_background(order_id: uuid.UUID) -> None:
    """Publish off the request path; with the outbox full, leave the order to the sweeper."""
    if not _outbox.submit(order_id):
        # The backlog is full: the broker is far behind. The sweeper publishes this one later.
        Order.objects.filter(pk=order_id).update(enqueued_at=None)


def drain_outbox(timeout: float = 10) -> bool:
    """Wait until the jobs handed to the outbox so far were published (or flagged); for tests and shutdown."""
    return _outbox.drain(timeout)
