"""Placing orders: the sync and async checkouts."""

from __future__ import annotations

import logging
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from payments import services as payment_services
from payments.queues import queue_depth
from payments.tasks import enqueue_charge
from shop.selectors import active_products_by_sku

from . import idempotency, outbox, transitions
from .exceptions import InvalidOrder
from .models import CheckoutMode, Order, OrderItem, OrderStatus

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
    off the request path (see orders.outbox), and an order whose job never got out is
    re-published by the sweeper.
    """
    with transaction.atomic(durable=True):
        order = create_order(email=email, lines=lines, mode=CheckoutMode.ASYNC, enqueued_at=timezone.now())
        transaction.on_commit(lambda: _publish_in_background(order.id))
    return order


def _publish_in_background(order_id: uuid.UUID) -> None:
    if not outbox.submit(publish_payment_job, order_id):
        # The backlog is full: the broker is far behind. The sweeper publishes this one later.
        Order.objects.filter(pk=order_id).update(enqueued_at=None)


def place_sync_order(*, email: str, lines: Sequence[Line]) -> tuple[Order, payment_services.Outcome]:
    """Accept an order and charge it inside the request, as the slow pre-queue shop did.

    When the provider does not give a final answer in time the order is handed to the
    background workers, so it is still charged exactly once.
    """
    with transaction.atomic(durable=True):
        order = create_order(email=email, lines=lines, mode=CheckoutMode.SYNC)
    outcome = payment_services.charge_order(order.id, timeout=settings.SYNC_PAYMENT_TIMEOUT_SECONDS)
    if outcome is payment_services.Outcome.RETRY:
        Order.objects.filter(pk=order.id).update(enqueued_at=timezone.now())
        publish_payment_job(order.id)
    order.refresh_from_db()
    return order, outcome


def publish_payment_job(order_id: uuid.UUID) -> bool:
    """Publish the order's payment job; if the broker is down, flag the order for the sweeper."""
    if enqueue_charge(order_id):
        return True
    Order.objects.filter(pk=order_id).update(enqueued_at=None)
    return False


@dataclass(frozen=True)
class SweepResult:
    released: int  # processing orders whose lease had run out
    published: int  # payment jobs published again
    unpublished: int  # ... of which the broker refused (tried again next sweep)
    keys_purged: int  # expired idempotency keys deleted


def sweep_stuck_orders() -> SweepResult:
    """Re-publish payment jobs for orders that would otherwise wait forever.

    - processing orders whose lease expired (their worker died): released, then published;
    - accepted orders whose job never got out (enqueued_at is null), after a short grace;
    - accepted orders waiting longer than ORDER_REQUEUE_AFTER_SECONDS, when SQS holds fewer jobs
      than there are accepted orders (messages were lost): as many as are missing, oldest first.
      A long backlog whose jobs are all still queued gets no duplicates.
    Safe beside workers and other sweepers: rows are locked with SKIP LOCKED (PostgreSQL) or
    under SQLite's write lock, stamped, and published after commit; a duplicate job is harmless.
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
    unpublished = Q(
        enqueued_at__isnull=True, updated_at__lt=now - timedelta(seconds=settings.SWEEP_GRACE_SECONDS)
    )
    stale = Q(enqueued_at__lt=now - timedelta(seconds=settings.ORDER_REQUEUE_AFTER_SECONDS))
    with transaction.atomic():
        waiting = Order.objects.select_for_update(skip_locked=True).filter(status=OrderStatus.ACCEPTED)
        order_ids = list(
            waiting.filter(Q(pk__in=released) | unpublished)
            .order_by("created_at")
            .values_list("id", flat=True)[:batch]
        )
        room = min(missing, batch - len(order_ids))
        if room > 0:
            order_ids += (
                waiting.filter(stale)
                .exclude(pk__in=order_ids)
                .order_by("created_at")
                .values_list("id", flat=True)[:room]
            )
        Order.objects.filter(pk__in=order_ids).update(enqueued_at=now)
    failed = sum(not publish_payment_job(order_id) for order_id in order_ids)
    return SweepResult(
        released=len(released),
        published=len(order_ids) - failed,
        unpublished=failed,
        keys_purged=idempotency.purge_expired(),
    )


def _jobs_missing_from_queue() -> int:
    """How many accepted orders have no job in SQS, going by counts; 0 when SQS does not answer."""
    try:
        depth = queue_depth()
    except (BotoCoreError, ClientError) as exc:
        log.warning("sweeper could not read the queue depth (%s); not re-publishing waiting orders", exc)
        return 0
    return max(0, Order.objects.filter(status=OrderStatus.ACCEPTED).count() - depth.total)


def create_order(*, email: str, lines: Sequence[Line], mode: str, enqueued_at=None) -> Order:
    """Create an accepted order from catalogue prices; publishes nothing (callers decide)."""
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
        enqueued_at=enqueued_at,
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
