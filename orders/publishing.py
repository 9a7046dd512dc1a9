"""Getting payment jobs out and recording on each order that one did.

The order row is the outbox. `enqueued_at` is when SQS last accepted a payment job for the order,
written here once it has, never before. Null means no job is known to be out: the order was just
placed and waits for the relay's next pass (orders.relay: a few tens of milliseconds), or SQS
refused its job and the relay tries again after its backoff. With no relay running, the sweeper
publishes null orders after SWEEP_GRACE_SECONDS (orders.recovery). The web never publishes an
accept's job: its 202 waits for the commit alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from django.utils import timezone

from . import jobs
from .models import Order

BATCH_SIZE = 10  # SQS's SendMessageBatch takes at most 10 entries


def publish_payment_jobs(order_ids: Sequence[uuid.UUID]) -> int:
    """Publish the orders' payment jobs in batches and stamp the ones SQS took; return how many it refused.

    One UPDATE stamps `enqueued_at = now` on every job SQS accepted, in the caller's thread (the
    relay's, the sweeper's, the console's), after the last batch. The refused are set null, though
    an order the relay publishes is null already: a caller may have stamped the order before
    publishing (the operations console, a sync checkout handed to the workers), and null is what
    makes the relay try again. A batch refused whole (SQS unreachable) ends the attempt: the rest
    count as refused without a request each.
    """
    accepted: list[uuid.UUID] = []
    refused: list[uuid.UUID] = []
    for start in range(0, len(order_ids), BATCH_SIZE):
        batch = order_ids[start : start + BATCH_SIZE]
        turned_away = jobs.payment_jobs().publish(batch)
        accepted += [order_id for order_id in batch if order_id not in turned_away]
        refused += turned_away
        if len(turned_away) == len(batch):
            refused += order_ids[start + BATCH_SIZE :]
            break
    if accepted:
        Order.objects.filter(pk__in=accepted).update(enqueued_at=timezone.now())
    if refused:
        Order.objects.filter(pk__in=refused).update(enqueued_at=None)
    return len(refused)


def publish_payment_job(order_id: uuid.UUID) -> bool:
    """Publish one order's payment job now; False (and the order left null) if the broker refused it."""
    return publish_payment_jobs([order_id]) == 0
