"""Recovery: the sweeper's work, so that no accepted order waits forever."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from . import idempotency, jobs, transitions
from .models import Order, OrderStatus
from .publishing import publish_payment_jobs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepResult:
    released: int  # processing orders whose lease had run out
    published: int  # payment jobs published again
    unpublished: int  # ... of which the broker refused (tried again next sweep)
    keys_purged: int  # expired idempotency keys deleted


def sweep_stuck_orders() -> SweepResult:
    """Re-publish payment jobs for orders that would otherwise wait forever.

    - processing orders whose lease expired (their worker died): released, then published;
    - accepted orders whose job never got out (enqueued_at is null), after a short grace;
    - accepted orders waiting longer than ORDER_REQUEUE_AFTER_SECONDS, when the queue holds fewer
      jobs than there are accepted orders (messages were lost): as many as are missing, oldest
      first. A long backlog whose jobs are all still queued gets no duplicates.
    Safe beside workers and other sweepers: rows are locked with SKIP LOCKED (PostgreSQL) or
    under SQLite's write lock, stamped, and published after commit; a duplicate job is harmless.
    """
    now = timezone.now()
    batch = settings.SWEEP_BATCH_SIZE
    expired = Order.objects.filter(status=OrderStatus.PROCESSING, lease_expires_at__lt=now)
    released = [
        order_id
        for order_id in expired.values_list("id", flat=True)[:batch]
        if transitions.release_if_lease_expired(order_id)
    ]
    missing = _jobs_missing_from_queue()  # asked before taking any lock: no I/O under locks
    unpublished = Q(
        enqueued_at__isnull=True, updated_at__lt=now - timedelta(seconds=settings.SWEEP_GRACE_SECONDS)
    )
    stale = Q(enqueued_at__lt=now - timedelta(seconds=settings.ORDER_REQUEUE_AFTER_SECONDS))
    with transaction.atomic():
        waiting = Order.objects.select_for_update(skip_locked=True).filter(status=OrderStatus.ACCEPTED)
        order_ids = list(
            waiting.filter(Q(pk__in=released) | unpublished)
            .order_by("created_at")
            .values_list("id", flat=True)[:batch]
        )
        room = min(missing, batch - len(order_ids))
        if room > 0:
            order_ids += (
                waiting.filter(stale)
                .exclude(pk__in=order_ids)
                .order_by("created_at")
                .values_list("id", flat=True)[:room]
            )
        Order.objects.filter(pk__in=order_ids).update(enqueued_at=now)
    failed = publish_payment_jobs(order_ids)  # in batches of SendMessageBatch's 10
    return SweepResult(
        released=len(released),
        published=len(order_ids) - failed,
        unpublished=failed,
        keys_purged=idempotency.purge_expired(),
    )


def _jobs_missing_from_queue() -> int:
    """How many accepted orders have no job queued, going by counts; 0 when the queue does not answer."""
    try:
        queued = jobs.payment_jobs().waiting()
    except jobs.JobsUnavailable as exc:
        log.warning("sweeper could not read the queue depth (%s); not re-publishing waiting orders", exc)
        return 0
    return max(0, Order.objects.filter(status=OrderStatus.ACCEPTED).count() - queued)
