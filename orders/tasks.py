"""Payment jobs. Thin: take an order id, run the charge workflow, decide about retrying."""

from __future__ import annotations

import math

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.utils import timezone

from core.timeouts import SQS_MAX_DELAY_SECONDS
from observability.logging import bound

from . import charging, transitions


@shared_task(bind=True, name="orders.charge_order", max_retries=None)
def charge_order_task(self, order_id: str) -> str:
    # Every line this charge logs names the order and the task (the web's lines name the order too).
    with bound(order_id=order_id, task_id=self.request.id):
        return _charge(self, order_id)


def _charge(self, order_id: str) -> str:
    outcome = charging.charge_order(order_id, timeout=settings.PAYMENT_TIMEOUT_SECONDS)
    if outcome is charging.Outcome.RETRY:
        # The retry waits in SQS (DelaySeconds), not in this worker's memory as an ETA task would:
        # until the order is due if it must wait for the provider to settle, else a backoff.
        due = transitions.due_at(order_id)
        if due is not None:
            delay = math.ceil((due - timezone.now()).total_seconds())
        else:
            delay = get_exponential_backoff_interval(
                factor=1, retries=self.request.retries, maximum=60, full_jitter=True
            )
        raise self.retry(countdown=0, delay_seconds=max(0, min(delay, SQS_MAX_DELAY_SECONDS)))
    return outcome.value
