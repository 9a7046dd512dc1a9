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
    unpublished: int  # ... of which the broker refused (tried again after the grace)
    keys_purged: int  # expired idempotency keys deleted


def sweep_stuck_orders() -> SweepResult:
    """Publish payment jobs for the orders that would otherwise wait forever.

    - processing orders whose lease expired (their worker died): released, then published;
    - accepted orders with no job known to be out (`enqueued_at` null: SQS never took one), once
      SWEEP_GRACE_SECONDS have passed since the order was placed or last handed on (`updated_at`);
    - accepted orders whose job SQS lost, when the queue holds fewer jobs than there are accepted
      orders it took one for: that many of those published more than ORDER_REQUEUE_AFTER_SECONDS
      ago, the longest ago first (`_jobs_missing_from_queue` says why). A long backlog whose jobs
      are all queued gets no duplicates.

    Safe beside workers and other sweepers: the rows are locked with SKIP LOCKED and taken by
    setting their `updated_at` to now; their jobs are
    published after commit, and `publish_payment_jobs` stamps `enqueued_at` on those SQS accepts.
    A taken order is due again only a grace later: a sweeper that reads it after this one's commit,
    while SQS has not answered yet, leaves it; if this one dies before publishing, the order is
    still null and the next pass after the grace publishes it. A duplicate job is harmless.

    The grace counts from `updated_at`, not `created_at`. At the insert they are the same instant,
    and that is the case the grace is for: a web process's outbox holding the id for a moment.
    They differ once the row was written again, and every write to an accepted order is a fresh
    hand-off to a publisher working on it right now: a staff retry or re-publish (the console
    publishes at once), a release, a sweeper's take. Counted from `created_at` such an order would
    be due at once, so a second sweeper would publish what the first is still sending, and a
    refused order would be tried on every pass instead of once a grace. The customer's wait
    counts from `created_at` (`selectors.oldest_waiting_order_age_seconds`); the publisher's, here.
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
    untouched = Q(updated_at__lt=now - timedelta(seconds=settings.SWEEP_GRACE_SECONDS))
    unpublished = Q(enqueued_at__isnull=True) & untouched
    lost = Q(enqueued_at__lt=now - timedelta(seconds=settings.ORDER_REQUEUE_AFTER_SECONDS)) & untouched
    with transaction.atomic():
        waiting = Order.objects.select_for_update(skip_locked=True).filter(status=OrderStatus.ACCEPTED)
        order_ids = list(
            waiting.filter(Q(pk__in=released) | unpublished)
            .order_by("created_at")
            .values_list("id", flat=True)[:batch]
        )
        # A released order had a job published (it was claimed): the one published now is its
        # replacement, so it fills one of the missing jobs, if its own was among them.
        missing -= len(set(order_ids) & set(released))
        room = min(missing, batch - len(order_ids))
        if room > 0:
            order_ids += (
                waiting.filter(lost)
                .exclude(pk__in=order_ids)
                .order_by("enqueued_at")
                .values_list("id", flat=True)[:room]
            )
        Order.objects.filter(pk__in=order_ids).update(updated_at=now)
    failed = publish_payment_jobs(order_ids)  # in batches of SendMessageBatch's 10
    return SweepResult(
        released=len(released),
        published=len(order_ids) - failed,
        unpublished=failed,
        keys_purged=idempotency.purge_expired(),
    )


def _jobs_missing_from_queue() -> int:
    """How many accepted orders SQS took a job for have none queued, going by counts; 0 when the
    queue does not answer.

    Only orders with `enqueued_at` set count: a null one has no job to lose (the sweeper publishes
    it after the grace anyway), and counting it, as this did when every order was stamped at
    insert, spent the room on orders whose jobs were all queued. The queue's figure includes jobs
    in flight, those of orders being charged: while workers charge, this tends to count fewer than
    are missing, and the rest are found once they are done.

    Counts say how many, not which. The caller takes the orders whose last accepted publish is the
    oldest (`enqueued_at`, ascending). A message SQS lost was published before the loss, and
    whatever was published since is still queued, so the lost are among those published longest
    ago; an order just published again has the newest `enqueued_at`, so it is not taken again
    while an older one waits (nor at all within ORDER_REQUEUE_AFTER_SECONDS). By `created_at` the
    orders placed first were taken, whether theirs was the job lost or one published again a
    moment ago (every ORDER_REQUEUE_AFTER_SECONDS while they waited), and a lost one placed after
    them waited for them to be charged.
    """
    try:
        queued = jobs.payment_jobs().waiting()
    except jobs.JobsUnavailable as exc:
        log.warning("sweeper could not read the queue depth (%s); not re-publishing waiting orders", exc)
        return 0
    published = Order.objects.filter(status=OrderStatus.ACCEPTED, enqueued_at__isnull=False).count()
    return max(0, published - queued)
