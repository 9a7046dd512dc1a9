"""Payment jobs. Thin: take an order id, call the service, decide about retrying."""

from __future__ import annotations

import logging
import uuid

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings

from . import services

log = logging.getLogger(__name__)


@shared_task(bind=True, name="payments.charge_order", max_retries=None)
def charge_order_task(self, order_id: str) -> str:
    outcome = services.charge_order(order_id, timeout=settings.PAYMENT_TIMEOUT_SECONDS)
    if outcome is services.Outcome.RETRY:
        countdown = get_exponential_backoff_interval(
            factor=1, retries=self.request.retries, maximum=60, full_jitter=True
        )
        raise self.retry(countdown=countdown)
    return outcome.value


def enqueue_charge(order_id: uuid.UUID | str) -> bool:
    """Publish a payment job. Never raises: an order left unpublished is found by the sweeper."""
    try:
        charge_order_task.apply_async((str(order_id),))
    except Exception as exc:  # whatever the broker raised, the order is safe in the database
        log.warning("could not enqueue payment of order %s (%r); the sweeper will publish it", order_id, exc)
        return False
    return True
