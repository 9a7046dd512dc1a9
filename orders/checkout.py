"""Checkout: placing orders, async (charged by the workers) and sync (charged in the request)."""

from __future__ import annotations

import functools
import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Field
from django.utils import timezone

from shop import soldout
from shop.exceptions import OutOfStock, PerCustomerLimit, SaleNotStarted
from shop.models import Product, customer_key
from shop.selectors import active_products_by_sku

from . import charging, transitions
from .exceptions import InvalidOrder
from .models import CheckoutMode, Order, OrderEvent, OrderItem
from .publishing import publish_payment_job
from .selectors import order_with_history

log = logging.getLogger(__name__)

MAX_QUANTITY = 100
MAX_LINES = 50


@dataclass(frozen=True)
class Line:
    sku: str
    quantity: int


def place_async_order(
    *, email: str, lines: Sequence[Line], order_id: uuid.UUID | None = None, resume: bool = False
) -> Order:
    """Accept an order now and charge it in the background.

    The order row is the outbox: the web's work ends at its commit. The relay process publishes
    its payment job from the table (orders.relay) and stamps `enqueued_at` once SQS took it.
    `order_id`: the id an Idempotency-Key reserved for it (orders.idempotency). `resume`: an
    earlier request with that key died holding it, so the order may exist already: then it is the
    answer, placed once (and still null for the relay if its job never got out).
    """
    placed = _existing(order_id) if resume else None
    if placed is not None:
        return placed
    return _place(email=email, lines=lines, mode=CheckoutMode.ASYNC, order_id=order_id)


def place_sync_order(
    *,
    email: str,
    lines: Sequence[Line],
    order_id: uuid.UUID | None = None,
    resume: bool = False,
    timeout: float | None = None,
) -> tuple[Order, charging.Outcome | None]:
    """Accept an order and charge it inside the request, as the slow pre-queue shop did.

    Returns the order and how its charge ended: None when the order was committed but what
    happened next could not be recorded or read (the database failed after the commit); the order
    is then finished in the background (its lease runs out, the sweeper hands it to a worker, the
    same provider key replays the charge), and the answer still names it. When the provider gives
    no final answer in time the order is handed to the workers, to be charged exactly once.
    `order_id`, `resume`: as for async; an existing order is resumed, never placed twice. `timeout`: how long
    the charge may take (the request's own deadline), at most SYNC_PAYMENT_TIMEOUT_SECONDS.
    """
    placed = _existing(order_id) if resume else None
    order = placed or _place(email=email, lines=lines, mode=CheckoutMode.SYNC, order_id=order_id)
    limit = (
        settings.SYNC_PAYMENT_TIMEOUT_SECONDS
        if timeout is None
        else min(timeout, settings.SYNC_PAYMENT_TIMEOUT_SECONDS)
    )
    try:
        outcome = charging.charge_order(order.id, timeout=limit)
        if outcome is charging.Outcome.RETRY:
            publish_payment_job(order.id)  # the worker waits until the order is due (next_attempt_at)
        charged = order_with_history(order.id)  # the charge moved it on: read it back, with its history
    except DatabaseError:
        log.exception(
            "sync order %s committed, but its charge could not be recorded or read back; "
            "it is finished in the background",
            order.id,
            extra={"order_id": str(order.id)},
        )
        return order, None
    assert charged is not None  # orders are never deleted
    return charged, outcome


def check_basket(lines: Sequence[Line]) -> None:
    """Refuse now a basket that placing would refuse: a sync checkout is told before it waits its turn.

    InvalidOrder (an unknown sku, too many lines or units), SaleNotStarted, or OutOfStock for a
    product remembered as sold out or with fewer units left than asked, as the catalogue reads now.
    One read of the basket's products; placing checks again, atomically, whatever this let through.
    """
    quantities = _merged(lines)
    soldout.refuse(quantities)
    products = _resolve_lines(lines, quantities)
    _refuse_before_the_drop((products[sku] for sku in quantities), timezone.now())
    for sku, quantity in quantities.items():
        left = products[sku].left
        if left is not None and left < quantity:
            raise OutOfStock(sku=sku, name=products[sku].name, requested=quantity, left=left)


def _existing(order_id: uuid.UUID | None) -> Order | None:
    """The order already placed under this id (a resumed Idempotency-Key), with its history."""
    return None if order_id is None else order_with_history(order_id)


def _place(*, email: str, lines: Sequence[Line], mode: str, order_id=None) -> Order:
    """Write an accepted order, committed, in one statement: orders_accept reads the basket's
    products, reserves and writes (`_accept`). A product this process saw sell out in the last
    SOLD_OUT_CACHE_SECONDS is refused before it, from memory (shop/soldout.py).
    """
    quantities = _merged(lines)
    soldout.refuse(quantities)  # a product this process just saw sell out: refused from memory
    return _accept(email, lines, quantities, mode, order_id=order_id)


def create_order(
    *, email: str, lines: Sequence[Line], mode: str, enqueued_at=None, order_id: uuid.UUID | None = None
) -> Order:
    """Create an accepted order from catalogue prices and reserve its limited stock: the tests' and
    the lab's way to make one, through the accept's own statement (orders_accept).

    Refuses as checkout does (InvalidOrder, SaleNotStarted, OutOfStock, PerCustomerLimit) and then
    writes nothing; inside a caller's transaction the statement runs under a savepoint, so a refusal
    leaves the caller's work alone. Publishes nothing (callers decide).
    """
    return _accept(email, lines, _merged(lines), mode, order_id=order_id, enqueued_at=enqueued_at)


def _refuse_before_the_drop(products, now) -> None:
    """SaleNotStarted for the first product of the basket whose sale opens after `now`."""
    for product in products:
        if not product.on_sale(now):
            raise SaleNotStarted(sku=product.sku, name=product.name, starts_at=product.sale_starts_at)


def _new_order(*, email: str, mode: str, enqueued_at, order_id: uuid.UUID | None = None) -> Order:
    """An accepted order, not yet written, with its id (given, or new) and its provider key."""
    order_id = order_id or uuid.uuid4()
    return Order(
        id=order_id,
        email=email,
        mode=mode,
        currency=settings.SHOP_CURRENCY,
        # Derived from the order's id, so every attempt to charge it presents the same key.
        payment_key=Order.payment_key_for(order_id),
        enqueued_at=enqueued_at,
    )


def _lines_of(order: Order, rows: list[tuple], quantities: OrderedDict[str, int]) -> list[OrderItem]:
    """The order's lines as orders_accept wrote them, from the catalogue columns it returned for
    each line of the basket, in its order (`_PRODUCT_COLUMNS`): no Product is built, as the 202
    names none. A limited product's line holds its units."""
    return [
        OrderItem(
            order=order,
            product_id=product_id,
            sku=sku,
            name=name,
            quantity=quantity,
            unit_price=price,
            stock_reserved=stock is not None,
            counted_for_customer=per_customer_limit is not None,
        )
        for (product_id, sku, name, price, stock, _, per_customer_limit, *_), quantity in zip(
            rows, quantities.values(), strict=True
        )
    ]


def _placed_detail(mode: str) -> str:
    return f"order placed ({mode} checkout)"


def _as_written(order: Order, items: list[OrderItem], event: OrderEvent) -> None:
    """The order as just written is the whole order: the 202 is built without reading it back."""
    _answer_from_memory(order, "items", items)
    _answer_from_memory(order, "events", [event])


def _answer_from_memory(order: Order, relation: str, rows: list) -> None:
    """Make `order.<relation>.all()` return `rows` without a query, as prefetch_related leaves it.

    Only `.all()` is served from memory; any other query on the relation reads the database.
    """
    queryset = getattr(order, relation).all()
    queryset._result_cache = rows
    queryset._prefetch_done = True
    order.__dict__.setdefault("_prefetched_objects_cache", {})[relation] = queryset


def _check_size(lines: Sequence[Line]) -> None:
    if not lines:
        raise InvalidOrder({"items": ["An order needs at least one item."]})
    if len(lines) > MAX_LINES:
        raise InvalidOrder({"items": [f"An order can have at most {MAX_LINES} lines."]})


def _merged(lines: Sequence[Line]) -> OrderedDict[str, int]:
    """Quantities by sku, repeated skus added up; InvalidOrder for an empty or too long basket."""
    _check_size(lines)
    quantities: OrderedDict[str, int] = OrderedDict()
    for line in lines:
        quantities[line.sku] = quantities.get(line.sku, 0) + line.quantity
    return quantities


def _resolve_lines(lines: Sequence[Line], quantities: OrderedDict[str, int]) -> dict[str, Product]:
    """The basket's active products by sku, once every line is checked against the catalogue as it
    reads now (`quantities`: the lines merged by sku, `_merged`)."""
    products = active_products_by_sku(quantities)
    unknown = {sku for sku in quantities if sku not in products}
    over = {sku for sku, quantity in quantities.items() if sku in products and quantity > MAX_QUANTITY}
    _refuse_lines(lines, unknown, over)
    return products


def _refuse_lines(lines: Sequence[Line], unknown: set[str], over: set[str]) -> None:
    """InvalidOrder naming each line that is wrong, by its place in the basket as sent: its sku is
    `unknown` (no active product), or its sku is `over` the per-order limit and this line is where
    the repeated lines' running total passes it."""
    if not unknown and not over:
        return
    line_errors: list[dict] = [{} for _ in lines]
    running: dict[str, int] = {}
    for index, line in enumerate(lines):
        if line.sku in unknown:
            line_errors[index] = {"sku": [f"Unknown or unavailable product {line.sku!r}."]}
            continue
        running[line.sku] = running.get(line.sku, 0) + line.quantity
        if line.sku in over and running[line.sku] > MAX_QUANTITY:
            line_errors[index] = {
                "quantity": [f"At most {MAX_QUANTITY} of {line.sku!r} per order (repeated lines add up)."]
            }
    raise InvalidOrder({"items": line_errors})


# shop_reserve's refusal (shop/migrations/0003_reserve_function.py), with OutOfStock's fields as JSON.
OUT_OF_STOCK_SQLSTATE = "SL001"
PER_CUSTOMER_LIMIT_SQLSTATE = "SL002"  # ... and its per-customer refusal (0006_reserve_with_allowance)
REFUSALS = (OUT_OF_STOCK_SQLSTATE, PER_CUSTOMER_LIMIT_SQLSTATE)


def _execute(sql: str, params: dict) -> list[tuple]:
    """Run the accept's statement: on its own (it commits itself), or under a savepoint inside a
    caller's transaction, so that a refusal rolls back the statement and not the caller's work."""
    with connection.cursor() as cursor:
        if not connection.in_atomic_block:
            cursor.execute(sql, params)
            return cursor.fetchall()
        with transaction.atomic():
            cursor.execute(sql, params)
            return cursor.fetchall()


# The catalogue columns orders_accept returns for every line of the basket, in its order (null
# for a sku it did not find).
_PRODUCT_COLUMNS = ("id", "sku", "name", "price", "stock", "sale_starts_at", "per_customer_limit")
# Then the order's total and its event's id (null when nothing was written), shop_reserve's count,
# and why a line kept the order from being placed: its sku is unknown, its quantity over the limit.
_TOTAL, _EVENT_ID, _UNKNOWN, _OVER_LIMIT = (len(_PRODUCT_COLUMNS) + i for i in (0, 1, 3, 4))

# Read the basket's products and write the order, its lines and its first event, if it can:
# orders_accept (orders/migrations/0009_accept_function.py, 0012_accept_reports_refusals.py), a
# PL/pgSQL function so that PostgreSQL plans its statement once per connection instead of once per
# accept. It returns a row for every line of the basket, in its order.
ACCEPT_SQL = (
    "SELECT * FROM orders_accept(%(order)s::jsonb, %(skus)s::text[], %(quantities)s::integer[],"
    " %(now)s, %(detail)s, %(customer)s, %(most)s)"
)


# The order's columns that differ from one accept to the next. Every other column of a new order
# holds its field's default, the same for every accept: built once (`_row_template`).
_PER_ORDER = frozenset(
    {"id", "email", "mode", "currency", "payment_key", "enqueued_at", "created_at", "updated_at"}
)


@functools.cache  # once per process: 17 fields prepared per accept cost ~0.15 ms of CPU
def _row_template() -> tuple[dict, list[Field]]:
    """The new order's row as orders_accept takes it (the total it sums itself): the columns
    every accept shares, prepared once, and the fields to prepare for each order."""
    fields = [field for field in Order._meta.concrete_fields if field.name != "total"]
    prototype = Order()
    shared = {
        field.column: _as_json(field.get_db_prep_save(field.pre_save(prototype, True), connection))
        for field in fields
        if field.name not in _PER_ORDER
    }
    return shared, [field for field in fields if field.name in _PER_ORDER]


def _order_row(order: Order) -> dict:
    """The order's row for orders_accept's JSON: every concrete column but the total."""
    shared, per_order = _row_template()
    return shared | {
        field.column: _as_json(field.get_db_prep_save(field.pre_save(order, True), connection))
        for field in per_order
    }


def _as_json(value):
    """A column's database value as orders_accept's JSON carries it (the row type parses the text)."""
    if isinstance(value, datetime):
        return value.isoformat()  # microseconds kept, as the ORM writes them
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _accept(
    email: str,
    lines: Sequence[Line],
    quantities: OrderedDict[str, int],
    mode: str,
    *,
    order_id: uuid.UUID | None = None,
    enqueued_at=None,
) -> Order:
    """The order as placed by orders_accept, or the refusal its rows give the reason for.

    Outside a transaction the statement commits on its own: one round trip where a transaction
    took six (BEGIN, the catalogue read, three INSERTs, COMMIT). The 202 is built from what it
    returned, without reading the order back. A basket it did not place is refused from the same
    rows: InvalidOrder (an unknown sku, a quantity over the limit, worded per line as sent), else
    SaleNotStarted; OutOfStock and PerCustomerLimit come from shop_reserve's SQLSTATE.
    """
    order = _new_order(email=email, mode=mode, enqueued_at=enqueued_at, order_id=order_id)
    transitions.check_transition("", order.status)
    detail = _placed_detail(mode)
    now = timezone.now()
    params = {
        "order": json.dumps(_order_row(order)),
        "skus": list(quantities),
        "quantities": list(quantities.values()),
        "now": now,
        "detail": detail,
        "customer": customer_key(email),
        "most": MAX_QUANTITY,
    }
    try:
        rows = _execute(ACCEPT_SQL, params)
    except DatabaseError as exc:
        cause = exc.__cause__
        if not isinstance(cause, psycopg.Error) or cause.sqlstate not in REFUSALS:
            raise
        refused = json.loads(cause.diag.message_detail or "{}")
        if cause.sqlstate == PER_CUSTOMER_LIMIT_SQLSTATE:
            raise PerCustomerLimit(**refused) from None
        product_id = refused.pop("id")
        refusal = OutOfStock(**refused)
        soldout.remember(refusal, product_id)
        raise refusal from None
    _refuse_lines(
        lines, {row[1] for row in rows if row[_UNKNOWN]}, {row[1] for row in rows if row[_OVER_LIMIT]}
    )
    total, event_id = rows[0][_TOTAL], rows[0][_EVENT_ID]
    if total is None:  # every sku found, every quantity within the limit: a line not yet on sale
        names, width = list(_PRODUCT_COLUMNS), len(_PRODUCT_COLUMNS)
        _refuse_before_the_drop((Product.from_db(connection.alias, names, row[:width]) for row in rows), now)
        raise AssertionError(f"orders_accept placed no order for {list(quantities)} and said no reason")
    order.total = total
    order._state.adding, order._state.db = False, connection.alias
    event = transitions.placed(order, event_id=event_id, at=now, detail=detail)
    _as_written(order, _lines_of(order, rows, quantities), event)
    return order
