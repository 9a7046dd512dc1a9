"""Getting payment jobs out: now, or after the response, and flagging the order when it fails.

The order row is the outbox: `enqueued_at` says a job went out, null says the sweeper must publish
it (`orders.recovery`). Accepts hand the publish to `orders.outbox` so that the 202 never waits for
the broker.
"""

from __future__ import annotations

import uuid

from . import jobs, outbox
from .models import Order


def publish_payment_job(order_id: uuid.UUID) -> bool:
    """Publish the order's payment job; if the broker is down, flag the order for the sweeper."""
    if jobs.payment_jobs().publish(order_id):
        return True
    Order.objects.filter(pk=order_id).update(enqueued_at=None)
    return False


def publish_in_background(order_id: uuid.UUID) -> None:
    """Publish off the request path; with the outbox full, leave the order to the sweeper."""
    if not outbox.submit(publish_payment_job, order_id):
        # The backlog is full: the broker is far behind. The sweeper publishes this one later.
        Order.objects.filter(pk=order_id).update(enqueued_at=None)
