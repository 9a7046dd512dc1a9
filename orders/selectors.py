"""Reads of orders."""

import uuid

from django.db.models import Prefetch

from .models import Order, OrderEvent, OrderItem


def order_with_history(order_id: uuid.UUID) -> Order | None:
    return (
        Order.objects.prefetch_related(
            Prefetch("items", queryset=OrderItem.objects.order_by("id")),
            Prefetch("events", queryset=OrderEvent.objects.order_by("at", "id")),
        )
        .filter(pk=order_id)
        .first()
    )
