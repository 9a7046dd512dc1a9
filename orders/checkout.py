"""Checkout: placing orders, async (charged by the workers) and sync (charged in the request)."""

from __future__ import annotations

import logging
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from shop import services as stock
from shop.selectors import active_products_by_sku

from . import charging, transitions
from .exceptions import InvalidOrder
from .models import CheckoutMode, Order, OrderItem
from .publishing import publish_in_background, publish_payment_job
from .selectors import order_with_history

log = logging.getLogger(__name__)

MAX_QUANTITY = 100
MAX_LINES = 50


@dataclass(frozen=True)
class Line:
    sku: str
    quantity: int


def place_async_order(*, email: str, lines: Sequence[Line]) -> Order:
    """Accept an order now and charge it in the background.

    The order row is the outbox: it commits first, the payment job is published after commit
    off the request path (orders.publishing), and an order whose job never got out is
    re-published by the sweeper (orders.recovery).
    """
    with transaction.atomic(durable=True):
        order = create_order(email=email, lines=lines, mode=CheckoutMode.ASYNC, enqueued_at=timezone.now())
        transaction.on_commit(lambda: publish_in_background(order.id))
    return order


def place_sync_order(*, email: str, lines: Sequence[Line]) -> tuple[Order, charging.Outcome]:
    """Accept an order and charge it inside the request, as the slow pre-queue shop did.

    When the provider does not give a final answer in time the order is handed to the
    background workers, so it is still charged exactly once.
    """
    with transaction.atomic(durable=True):
        order = create_order(email=email, lines=lines, mode=CheckoutMode.SYNC)
    outcome = charging.charge_order(order.id, timeout=settings.SYNC_PAYMENT_TIMEOUT_SECONDS)
    if outcome is charging.Outcome.RETRY:
        Order.objects.filter(pk=order.id).update(enqueued_at=timezone.now())
        publish_payment_job(order.id)
    charged = order_with_history(order.id)  # the charge moved it on: read it back, with its history
    assert charged is not None  # orders are never deleted
    return charged, outcome


def create_order(*, email: str, lines: Sequence[Line], mode: str, enqueued_at=None) -> Order:
    """Create an accepted order from catalogue prices and reserve its limited stock.

    Call inside a transaction: on shop.exceptions.OutOfStock it rolls back whole (no order, no
    reservation). Publishes nothing (callers decide).
    """
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
        payment_key=Order.payment_key_for(order_id),
        enqueued_at=enqueued_at,
    )
    items = OrderItem.objects.bulk_create(
        OrderItem(
            order=order,
            product=products[sku],
            sku=sku,
            name=products[sku].name,
            quantity=qty,
            unit_price=products[sku].price,
            stock_reserved=products[sku].limited,
        )
        for sku, qty in quantities.items()
    )
    event = transitions.record_placed(order, detail=f"order placed ({mode} checkout)")
    # The order as just written is the whole order: the 202 is built without reading it back.
    _answer_from_memory(order, "items", items)
    _answer_from_memory(order, "events", [event])
    # Last statement before the commit: a hot product's row stays locked only from here to COMMIT.
    stock.reserve((products[sku].pk, qty) for sku, qty in quantities.items() if products[sku].limited)
    return order


def _answer_from_memory(order: Order, relation: str, rows: list) -> None:
    """Make `order.<relation>.all()` return `rows` without a query, as prefetch_related leaves it.

    Only `.all()` is served from memory; any other query on the relation reads the database.
    """
    queryset = getattr(order, relation).all()
    queryset._result_cache = rows
    queryset._prefetch_done = True
    order.__dict__.setdefault("_prefetched_objects_cache", {})[relation] = queryset


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
