"""Payment jobs. Thin: take an order id, run the charge workflow, decide about retrying."""

from __future__ import annotations

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings

from observability.logging import bound

from . import charging


@shared_task(bind=True, name="orders.charge_order", max_retries=None)
def charge_order_task(self, order_id: str) -> str:
    # Every line this charge logs names the order and the task (the web's lines name the order too).
    with bound(order_id=order_id, task_id=self.request.id):
        return _charge(self, order_id)


def _charge(self, order_id: str) -> str:
    outcome = charging.charge_order(order_id, timeout=settings.PAYMENT_TIMEOUT_SECONDS)
    if outcome is charging.Outcome.RETRY:
        countdown = get_exponential_backoff_interval(
            factor=1, retries=self.request.retries, maximum=60, full_jitter=True
        )
        raise self.retry(countdown=countdown)
    return outcome.value
