"""Placing orders: the sync and async checkouts."""

from __future__ import annotations

import logging
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction

from payments import services as payment_services
from payments.tasks import enqueue_charge
from shop.selectors import active_products_by_sku

from . import transitions
from .exceptions import InvalidOrder
from .models import CheckoutMode, Order, OrderItem

log = logging.getLogger(__name__)

MAX_QUANTITY = 100
MAX_LINES = 50


@dataclass(frozen=True)
class Line:
    sku: str
    quantity: int


def place_async_order(*, email: str, lines: Sequence[Line]) -> Order:
    """Accept an order now and charge it in the background.

    The order row is the outbox: it commits first, the payment job is published after commit,
    and an order whose job never got out is re-published by the sweeper.
    """
    with transaction.atomic(durable=True):
        order = _create_order(email=email, lines=lines, mode=CheckoutMode.ASYNC)
        transaction.on_commit(lambda: enqueue_charge(order.id))
    return order


def place_sync_order(*, email: str, lines: Sequence[Line]) -> tuple[Order, payment_services.Outcome]:
    """Accept an order and charge it inside the request, as the slow pre-queue shop did.

    When the provider does not give a final answer in time the order is handed to the
    background workers, so it is still charged exactly once.
    """
    with transaction.atomic(durable=True):
        order = _create_order(email=email, lines=lines, mode=CheckoutMode.SYNC)
    outcome = payment_services.charge_order(order.id, timeout=settings.SYNC_PAYMENT_TIMEOUT_SECONDS)
    if outcome is payment_services.Outcome.RETRY:
        enqueue_charge(order.id)
    order.refresh_from_db()
    return order, outcome


def _create_order(*, email: str, lines: Sequence[Line], mode: str) -> Order:
    products, quantities = _resolve_lines(lines)
    total = sum((products[sku].price * qty for sku, qty in quantities.items()), Decimal("0"))
    order_id = uuid.uuid4()
    order = Order.objects.create(
        id=order_id,
        email=email,
        mode=mode,
        currency=settings.SHOP_CURRENCY,
        total=total,
        # Derived from the order's id, so every attempt to charge it presents the same key.
        payment_key=f"order-{order_id}",
    )
    OrderItem.objects.bulk_create(
        OrderItem(
            order=order,
            product=products[sku],
            sku=sku,
            name=products[sku].name,
            quantity=qty,
            unit_price=products[sku].price,
        )
        for sku, qty in quantities.items()
    )
    transitions.record_placed(order, detail=f"order placed ({mode} checkout)")
    return order


def _resolve_lines(lines: Sequence[Line]) -> tuple[dict, OrderedDict[str, int]]:
    """Check every line against the catalogue; merge repeated skus into one line."""
    if not lines:
        raise InvalidOrder({"items": ["An order needs at least one item."]})
    if len(lines) > MAX_LINES:
        raise InvalidOrder({"items": [f"An order can have at most {MAX_LINES} lines."]})
    products = active_products_by_sku(line.sku for line in lines)
    line_errors: list[dict] = [{} for _ in lines]
    quantities: OrderedDict[str, int] = OrderedDict()
    for index, line in enumerate(lines):
        if line.sku not in products:
            line_errors[index] = {"sku": [f"Unknown or unavailable product {line.sku!r}."]}
            continue
        quantities[line.sku] = quantities.get(line.sku, 0) + line.quantity
        if quantities[line.sku] > MAX_QUANTITY:
            line_errors[index] = {
                "quantity": [f"At most {MAX_QUANTITY} of {line.sku!r} per order (repeated lines add up)."]
            }
    if any(line_errors):
        raise InvalidOrder({"items": line_errors})
    return products, quantities
