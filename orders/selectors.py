"""Reads of orders."""

import uuid

from django.db.models import Prefetch
from django.utils import timezone

from .models import Order, OrderEvent, OrderItem, OrderStatus


def order_with_history(order_id: uuid.UUID) -> Order | None:
    return (
        Order.objects.prefetch_related(
            Prefetch("items", queryset=OrderItem.objects.order_by("id")),
            Prefetch("events", queryset=OrderEvent.objects.order_by("at", "id")),
        )
        .filter(pk=order_id)
        .first()
    )


def oldest_waiting_order_age_seconds() -> float | None:
    """Seconds since the oldest order still `accepted` (not claimed by a worker) was placed; None if none.

    One indexed read (created_at). An order a worker gave back for a retry counts from its placing:
    the customer has waited that long.
    """
    oldest = (
        Order.objects.filter(status=OrderStatus.ACCEPTED)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    return None if oldest is None else max(0.0, (timezone.now() - oldest).total_seconds())


def unpublished_order_count() -> int:
    """Accepted orders whose payment job did not get out (`enqueued_at` null): the sweeper's to publish.

    Orders a web process still holds in its in-memory outbox are not here (their `enqueued_at` is
    set at accept): that backlog is the web's own gauge, `flashsale_outbox_pending_jobs`.
    """
    return Order.objects.filter(status=OrderStatus.ACCEPTED, enqueued_at__isnull=True).count()
