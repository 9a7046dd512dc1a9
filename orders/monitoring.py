"""The sweeper's gauges: how far behind the shop is, sampled once per pass, never per request.

Read from the database (the oldest waiting order, the orders whose job did not get out) and from
the payment-jobs port (SQS's waiting, in-flight and dead-lettered counts). A part that does not
answer leaves its gauges at their last value and counts a sample failure; the sweep goes on.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError

from observability import metrics

from . import jobs, selectors

log = logging.getLogger(__name__)


def sample_backlog() -> None:
    try:
        metrics.backlog_sampled(
            oldest_waiting_seconds=selectors.oldest_waiting_order_age_seconds(),
            unpublished=selectors.unpublished_order_count(),
        )
    except DatabaseError as exc:
        metrics.sample_failed("database")
        log.warning("could not sample the order backlog: %s", exc)
    try:
        depth = jobs.payment_jobs().depth()
    except jobs.JobsUnavailable as exc:
        metrics.sample_failed("queue")
        log.warning("could not sample the queue depth: %s", exc)
    else:
        metrics.queue_sampled(
            waiting=depth.waiting, in_flight=depth.in_flight, dead_lettered=depth.dead_lettered
        )
    if emf := metrics.emf():
        emf.flush()  # the pass's gauges as one line now, not at the next interval
