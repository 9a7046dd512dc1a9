"""The payment-jobs port: how the order domain hands orders to the background workers.

Two questions, nothing more: publish a job for this order, and how many jobs wait. The order
modules ask them through `payment_jobs()`; the one adapter (`orders.sqs_jobs`) answers them with
Celery on SQS. No other module under `orders/` touches a broker.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string


class JobsUnavailable(Exception):
    """The job queue did not answer (a broker outage, a network error)."""


@dataclass(frozen=True)
class JobsDepth:
    waiting: int  # not yet received by a worker (delayed retries included)
    in_flight: int  # received by a worker, not yet acknowledged
    dead_lettered: int  # in the dead-letter queue


class PaymentJobs(Protocol):
    def publish(self, order_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
        """Publish these orders' payment jobs (at most 10, one request); return the ids refused.

        Never raises: a broker outage refuses them all.
        """

    def prepare(self) -> None:
        """Load and build what publishing needs, and publish nothing: the relay does this before its
        first pass (orders/relay.py), so that the sale's first orders do not wait while the
        publisher is built. Never raises for a broker that does not answer.
        """

    def waiting(self) -> int:
        """How many payment jobs the queue holds (waiting, in flight or delayed).

        Raises JobsUnavailable when the queue cannot tell.
        """

    def depth(self) -> JobsDepth:
        """The queue's and its dead-letter queue's depth, for the metrics; JobsUnavailable if unknown."""


@cache
def _adapter(path: str) -> PaymentJobs:
    return import_string(path)()


def payment_jobs() -> PaymentJobs:
    """The configured adapter (settings.PAYMENT_JOBS_ADAPTER), made once per process."""
    return _adapter(settings.PAYMENT_JOBS_ADAPTER)
