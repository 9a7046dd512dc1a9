"""Getting payment jobs out (now, or after the response) and recording on each order that one did.

The order row is the outbox. `enqueued_at` is when SQS last accepted a payment job for the order,
written here once it has, never before. Null means no job is known to be out: the order was just
placed and a web process's outbox still holds its id (for a moment: the linger and one
SendMessageBatch), or its job was refused, dropped by a full outbox, or held by a process that
died. The sweeper publishes those after SWEEP_GRACE_SECONDS (orders.recovery). Accepts hand their
order id to `orders.outbox`, which publishes in batches after the response, so that the 202
never waits for the broker.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Sequence

from django.conf import settings
from django.utils import timezone

from . import jobs
from .models import Order
from .outbox import BATCH_SIZE, Outbox

log = logging.getLogger(__name__)

LOGGED_IDS = 100  # order ids named in an exit's log line; the rest are in the database (null)


def publish_payment_jobs(order_ids: Sequence[uuid.UUID]) -> int:
    """Publish the orders' payment jobs in batches and stamp the ones SQS took; return how many it refused.

    Each batch that SQS answered costs one UPDATE, `enqueued_at = now` on the jobs it accepted,
    in the caller's thread (the outbox's publishers: off the request path). The refused are set
    null, though an order placed by the outbox path is null already: a caller may have stamped
    the order before publishing (the operations console, a sync checkout handed to the workers),
    and null is what makes the sweeper try again.
    """
    refused: list[uuid.UUID] = []
    for start in range(0, len(order_ids), BATCH_SIZE):
        batch = order_ids[start : start + BATCH_SIZE]
        turned_away = jobs.payment_jobs().publish(batch)
        if accepted := [order_id for order_id in batch if order_id not in turned_away]:
            Order.objects.filter(pk__in=accepted).update(enqueued_at=timezone.now())
        refused += turned_away
    if refused:
        Order.objects.filter(pk__in=refused).update(enqueued_at=None)
    return len(refused)


def publish_payment_job(order_id: uuid.UUID) -> bool:
    """Publish one order's payment job now; False (and the order left null) if the broker refused it."""
    return publish_payment_jobs([order_id]) == 0


_outbox = Outbox(
    publish_payment_jobs,
    max_pending=lambda: settings.OUTBOX_MAX_PENDING,
    linger=lambda: settings.OUTBOX_LINGER_SECONDS,
)


def publish_in_background(order_id: uuid.UUID) -> None:
    """Publish off the request path. With the outbox full (the broker far behind) nothing is queued
    and nothing written: the order is still null, so the sweeper publishes it after the grace."""
    _outbox.submit(order_id)


def drain_outbox(timeout: float = 10) -> bool:
    """Wait until the jobs handed to the outbox so far were published (or refused); for tests."""
    return _outbox.drain(timeout)


def drain_outbox_before_exit() -> list[uuid.UUID]:
    """Publish what this process still holds, within OUTBOX_DRAIN_SECONDS, without lingering for
    fuller batches; log what it could not, and return those ids.

    For gunicorn's worker_exit hook (config/gunicorn.py). What is left stays null in the database
    and the sweeper publishes it after SWEEP_GRACE_SECONDS, as it does for a process killed with
    ids in its outbox.
    """
    held = len(_outbox.unsent())
    if not held:
        return []
    started = time.monotonic()
    _outbox.drain(settings.OUTBOX_DRAIN_SECONDS, flush=True)
    unsent = _outbox.unsent()
    figures = {
        "outbox_held": held,
        "outbox_unsent": len(unsent),
        "seconds": round(time.monotonic() - started, 3),
        "pid": os.getpid(),
    }
    if unsent:
        log.warning(
            "web process exiting with %d of its %d payment jobs unpublished after %gs; "
            "the sweeper publishes them after SWEEP_GRACE_SECONDS",
            len(unsent),
            held,
            settings.OUTBOX_DRAIN_SECONDS,
            extra={**figures, "order_ids": [str(order_id) for order_id in unsent[:LOGGED_IDS]]},
        )
    else:
        log.info("web process exiting: its %d pending payment jobs were handed to SQS", held, extra=figures)
    return unsent
