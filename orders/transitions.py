"""The order state machine: the only code that writes `Order.status`, and its history's one writer.

Every `OrderEvent` is written here (a move, or a `note` that is not one), or by a PostgreSQL
function called from here: orders_pay (orders/migrations/0011) writes the payment's. The one
exception is the first event of an order: orders_accept (orders/migrations/0012) writes it with
the order, the move from nothing to accepted that `check_transition` vets before the call.

Each move is a compare-and-set on the current status plus one `OrderEvent`, in one transaction
(or one statement), so two workers racing for the same order cannot both win and history never
disagrees with state. The two final moves also settle the order's limited stock in it (paid:
reserved → sold; failed: reserved → back on sale): the compare-and-set succeeds once, so stock is
settled once.

Fencing: a claim hands its attempt a token (`Order.claim_token`, one more on every claim, never
reset), and every move that attempt makes afterwards (release, paid, failed) compares it too. An
attempt whose lease ran out and whose order another attempt took over holds an old token: its moves
match nothing, raise TransitionConflict, and the caller logs it as stale. Only the reconciliation
(`settle_from_ledger`), which acts on the provider's books rather than on an attempt, moves without one.
"""

import functools
import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from observability import metrics
from shop import stock
from shop.models import customer_key

from .exceptions import IllegalTransition, TransitionConflict
from .models import FailureCode, Order, OrderEvent, OrderItem
from .models import OrderStatus as S
from .sql import column, columns, table

log = logging.getLogger(__name__)

# processing → accepted releases an order for another attempt (lease expired, provider timed
# out or answered with a transient error); the same idempotency key makes the retry safe.
# failed → accepted is staff's retry once the cause is fixed (orders/operations.py: it takes the
# order's stock back and decides the provider key); nothing else makes that move.
# accepted → paid and failed → paid are the reconciliation's only (`settle_from_ledger`): the
# provider's books show a charge for the order's key that no attempt recorded.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    "": frozenset({S.ACCEPTED}),
    S.ACCEPTED: frozenset({S.PROCESSING, S.PAID}),
    S.PROCESSING: frozenset({S.PAID, S.FAILED, S.ACCEPTED}),
    S.PAID: frozenset(),
    S.FAILED: frozenset({S.ACCEPTED, S.PAID}),
}


def check_transition(from_status: str, to_status: str) -> None:
    if to_status not in ALLOWED_TRANSITIONS.get(from_status, frozenset()):
        raise IllegalTransition(f"An order cannot move from {from_status or 'nothing'!r} to {to_status!r}.")


def placed(order: Order, *, event_id: int, at: Any, detail: str) -> OrderEvent:
    """The first event of an order orders_accept just wrote (nothing → accepted, vetted by
    `check_transition` before the call), as written; counted and logged once committed (an order
    whose transaction rolled back was never accepted)."""
    event = OrderEvent(id=event_id, order=order, from_status="", to_status=order.status, at=at, detail=detail)
    transaction.on_commit(lambda: _placed(order.id, order.mode))
    return event


def _placed(order_id: Any, mode: str) -> None:
    metrics.order_reached(S.ACCEPTED, mode)
    log.info("order accepted", extra={"order_id": str(order_id), "mode": mode, "to_status": S.ACCEPTED})


@transaction.atomic
def transition(
    order_id: Any,
    from_status: str,
    to_status: str,
    *,
    detail: str = "",
    only_if: Q | None = None,
    **fields: Any,
) -> None:
    """Move an order from `from_status` to `to_status`, setting `fields` too, and log the event.

    `only_if` narrows the compare-and-set further. Raises IllegalTransition for a move not in
    the table (nothing changes) and TransitionConflict when the order is no longer as expected.
    """
    check_transition(from_status, to_status)
    moved = Order.objects.filter(Q(pk=order_id, status=from_status), only_if or Q()).update(
        status=to_status, updated_at=timezone.now(), **fields
    )
    if not moved:
        raise TransitionConflict(f"Order {order_id} is not {from_status!r} any more.")
    OrderEvent.objects.create(
        order_id=order_id, from_status=from_status, to_status=to_status, detail=detail[:255]
    )
    transaction.on_commit(lambda: _log_move(order_id, from_status, to_status))


def note(order_id: Any, status: str, *, detail: str, **fields: Any) -> None:
    """Record in the order's history something done to it that is not a move (a re-published job),
    setting `fields` too, if it is still in `status`; TransitionConflict when it is not.

    Not a status change, but its `OrderEvent` (from `status` to `status`) is written here, beside
    every other, so that history has one writer.
    """
    noted = Order.objects.filter(pk=order_id, status=status).update(updated_at=timezone.now(), **fields)
    if not noted:
        raise TransitionConflict(f"Order {order_id} is not {status!r} any more.")
    OrderEvent.objects.create(order_id=order_id, from_status=status, to_status=status, detail=detail[:255])


def claim(order_id: Any, *, lease_seconds: float, detail: str = "") -> Order | None:
    """Take an accepted order for charging: the order as claimed (its `claim_token` is this
    attempt's fencing token), or None if someone else has it, it is finished, or it must wait
    (`next_attempt_at` is still ahead).

    Every payment starts here, so the move is one statement (`_claim_sql`: the compare-and-set,
    its event and the order read back) instead of a transaction of four round trips and a read.
    """
    now = timezone.now()
    check_transition(S.ACCEPTED, S.PROCESSING)
    sql, attnames = _claim_sql()
    row = _move_in_one_statement(
        sql, id=order_id, to=S.PROCESSING, now=now, lease=now + timedelta(seconds=lease_seconds),
        detail=detail, **{"from": S.ACCEPTED},
    )  # fmt: skip
    if row is None:
        return None
    transaction.on_commit(lambda: _log_move(order_id, S.ACCEPTED, S.PROCESSING))
    return Order.from_db(connection.alias, attnames, row)


# The columns the claim's statement fills in an OrderEvent, in order.
EVENT_FIELDS = ("order", "from_status", "to_status", "at", "detail")


def _move_sql(assignments: str, *, result: str, condition: str = "") -> str:
    """One move and its OrderEvent in one statement: a data-modifying CTE.

    The UPDATE is the compare-and-set (it matches nothing unless the order is still `%(from)s` and
    `condition` holds), the INSERT logs the event only for the row it moved, and both commit together
    as the one statement they are: one round trip instead of a transaction's four or more, each of
    which a busy worker's thread waits out for the GIL. Names come from the models, so a renamed
    field cannot drift.
    """
    order_id, status, updated_at = (column(Order, name) for name in ("id", "status", "updated_at"))
    return (
        f"WITH moved AS ("
        f" UPDATE {table(Order)} SET {status} = %(to)s, {updated_at} = %(now)s, {assignments}"
        f" WHERE {order_id} = %(id)s AND {status} = %(from)s{condition} RETURNING *"
        f"), logged AS ("
        f" INSERT INTO {table(OrderEvent)} ({columns(OrderEvent, EVENT_FIELDS)})"
        f" SELECT {order_id}, %(from)s, %(to)s, %(now)s, %(detail)s FROM moved"
        f") SELECT {result} FROM moved"
    )


def _move_in_one_statement(sql: str, **params: Any) -> tuple | None:
    """Run a `_move_sql` statement; its result row, or None when the order was not as expected."""
    params["detail"] = params["detail"][:255]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


@functools.cache  # built once per process: the claim is on every payment's path
def _claim_sql() -> tuple[str, list[str]]:
    """accepted → processing with a lease, one more attempt and a new fencing token, if the order is
    due; the order read back, every column.

    Returns the statement and the attribute names of the columns it reads back, in their order."""
    lease, attempts = column(Order, "lease_expires_at"), column(Order, "attempts")
    token, due = column(Order, "claim_token"), column(Order, "next_attempt_at")
    fields = Order._meta.concrete_fields
    result = columns(Order, (field.name for field in fields))
    assignments = f"{lease} = %(lease)s, {attempts} = {attempts} + 1, {token} = {token} + 1, {due} = NULL"
    is_due = f" AND ({due} IS NULL OR {due} <= %(now)s)"
    sql = _move_sql(assignments, result=result, condition=is_due)
    return sql, [field.attname for field in fields]


def _log_move(order_id: Any, from_status: str, to_status: str) -> None:
    log.info(
        "order %s → %s",
        from_status,
        to_status,
        extra={"order_id": str(order_id), "from_status": from_status, "to_status": to_status},
    )


def release(
    order_id: Any, *, token: int, detail: str, not_before: Any = None, uncounted: bool = False
) -> None:
    """Give a claimed order back (processing → accepted) so that another attempt can take it, not
    before `not_before` (None: at once). `token`: the claim's; a stale one changes nothing.
    `uncounted`: the attempt does not count against PAYMENT_MAX_ATTEMPTS (our mistake, not the
    provider's: a refused API key)."""
    transition(
        order_id,
        S.PROCESSING,
        S.ACCEPTED,
        detail=detail,
        only_if=Q(claim_token=token),
        lease_expires_at=None,
        next_attempt_at=not_before,
        **({"attempts": F("attempts") - 1} if uncounted else {}),
    )


def due_at(order_id: Any) -> Any:
    """When a waiting order may next be claimed, if that is still ahead; else None."""
    return (
        Order.objects.filter(pk=order_id, status=S.ACCEPTED, next_attempt_at__gt=timezone.now())
        .values_list("next_attempt_at", flat=True)
        .first()
    )


def release_if_lease_expired(order_id: Any) -> bool:
    """Release a processing order whose worker's lease has run out (the worker died or hung).

    That worker's provider call may have reached the provider: the next attempt waits until it
    has settled there (PAYMENT_SETTLE_SECONDS from when the dead attempt started, its lease's start).
    """
    settled_after = timedelta(seconds=settings.PAYMENT_SETTLE_SECONDS - settings.ORDER_LEASE_SECONDS)
    try:
        transition(
            order_id,
            S.PROCESSING,
            S.ACCEPTED,
            detail="lease expired; the previous attempt did not finish",
            only_if=Q(lease_expires_at__lt=timezone.now()),
            lease_expires_at=None,
            next_attempt_at=F("lease_expires_at") + settled_after,
        )
    except TransitionConflict:
        return False
    return True


def reserved_units(order_id: Any) -> tuple[list[tuple[int, int]], str]:
    """The (product id, quantity) pairs this order holds from limited stock, and how to say so."""
    lines = list(
        OrderItem.objects.filter(order_id=order_id, stock_reserved=True).values_list(
            "product_id", "quantity", "sku"
        )
    )
    return [(product_id, quantity) for product_id, quantity, _ in lines], ", ".join(
        f"{quantity} × {sku}" for _, quantity, sku in lines
    )


def counted_units(order_id: Any) -> tuple[str, list[tuple[int, int]]] | None:
    """The customer and the (product id, quantity) pairs this order counts against per-customer
    limits; None when it counts none."""
    lines = list(
        OrderItem.objects.filter(order_id=order_id, counted_for_customer=True).values_list(
            "product_id", "quantity", "order__email"
        )
    )
    if not lines:
        return None
    return customer_key(lines[0][2]), [(product_id, quantity) for product_id, quantity, _ in lines]


def _with_stock_note(detail: str, note: str) -> str:
    return f"{detail}; {note}"[:255] if note else detail[:255]


def _mode_and_created_at(order_id: Any, order: Order | None) -> tuple[str, Any]:
    """What the metrics need of a settled order: from the caller's copy when it has one (the charger
    read the order when it claimed it: a query less per payment), else from the database."""
    if order is not None:
        return order.mode, order.created_at
    return Order.objects.values_list("mode", "created_at").get(pk=order_id)


def mark_paid(
    order_id: Any, *, token: int, charge_id: str, detail: str = "", order: Order | None = None
) -> None:
    """processing → paid; the order's reserved units become sold. `token`: the claim's; `order`: the
    caller's copy, if any. TransitionConflict when the order is not processing under that token.

    Every payment ends here, in one statement: orders_pay (orders/migrations/0011_pay_function.py)
    moves the order, writes its event and settles its limited units in product-id order, the
    checkout's lock order, each product's row locked only from its UPDATE to the commit.
    """
    check_transition(S.PROCESSING, S.PAID)
    paid_at = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            PAY_SQL,
            {"id": order_id, "token": token, "charge_id": charge_id, "now": paid_at,
             "detail": detail or f"charged ({charge_id})"},
        )  # fmt: skip
        (paid,) = cursor.fetchone()
    if not paid:
        raise TransitionConflict(f"Order {order_id} is not {S.PROCESSING.value!r} any more.")
    transaction.on_commit(lambda: _log_move(order_id, S.PROCESSING, S.PAID))
    _count_paid(order_id, order, paid_at)


# processing → paid, its event and its units sold (orders/migrations/0011_pay_function.py).
PAY_SQL = "SELECT orders_pay(%(id)s::uuid, %(token)s, %(charge_id)s, %(now)s, %(detail)s)"


def _count_paid(order_id: Any, order: Order | None, paid_at: Any) -> None:
    mode, created_at = _mode_and_created_at(order_id, order)
    transaction.on_commit(lambda: _settled(S.PAID, mode, (paid_at - created_at).total_seconds()))


# What a failed order's history says (anyone holding the order's id reads it): plain words by code.
# The provider's own text stays in `Order.failure_reason`, for staff.
FAILURES_IN_WORDS: dict[str, str] = {
    FailureCode.DECLINED: "payment declined",
    FailureCode.REJECTED: "payment request refused by the provider",
    FailureCode.UNAVAILABLE: "payment provider unavailable, and its books show no charge",
}


def failure_in_words(code: str, reason: str) -> str:
    """The history's words for a failure: by its code; an order failed before codes, its reason."""
    return FAILURES_IN_WORDS.get(code, reason)


@transaction.atomic
def mark_failed(
    order_id: Any, *, token: int, reason: str, code: str = "", order: Order | None = None
) -> None:
    """processing → failed; the order's reserved units go back on sale. `token`: the claim's;
    `code`: a FailureCode (the event says it in words; `reason` is kept for staff)."""
    reason = reason[:255]
    units, lines = reserved_units(order_id)
    transition(
        order_id,
        S.PROCESSING,
        S.FAILED,
        detail=_with_stock_note(failure_in_words(code, reason), lines and f"released {lines} to stock"),
        only_if=Q(claim_token=token),
        failure_reason=reason,
        failure_code=code,
        lease_expires_at=None,
    )
    mode, _ = _mode_and_created_at(order_id, order)
    transaction.on_commit(lambda: _settled(S.FAILED, mode))
    stock.release(units)
    if counted := counted_units(order_id):
        stock.give_back(*counted)


def _settled(status: str, mode: str, seconds_since_accepted: float | None = None) -> None:
    """Count a final status once its transaction committed (a rolled-back one never happened)."""
    metrics.order_reached(status, mode)
    if seconds_since_accepted is not None:
        metrics.order_paid_after(seconds_since_accepted)


@transaction.atomic
def settle_from_ledger(order_id: Any, *, charge_id: str, detail: str) -> str:
    """Record a charge the provider's books show for the order's key, whatever attempt is running:
    accepted, processing or failed → paid. Returns the status it moved from.

    The reconciliation's repair (orders.reconciliation). Units a failed order released are sold
    again if they are still for sale; if they were sold to someone else, OutOfStock and nothing
    changes (a person decides: refund, or find the unit). Raises TransitionConflict when the order
    is already paid.
    """
    current = Order.objects.select_for_update().filter(pk=order_id).values_list("status", flat=True).first()
    if current is None or current == S.PAID:
        raise TransitionConflict(f"Order {order_id} is {current or 'missing'}, not waiting or failed.")
    lines = list(
        OrderItem.objects.filter(order_id=order_id, stock_reserved=True).values_list("product_id", "quantity")
    )
    paid_at = timezone.now()
    transition(
        order_id,
        current,
        S.PAID,
        detail=detail,
        charge_id=charge_id,
        paid_at=paid_at,
        lease_expires_at=None,
        next_attempt_at=None,
    )
    mode, created_at = Order.objects.values_list("mode", "created_at").get(pk=order_id)
    transaction.on_commit(lambda: _settled(S.PAID, mode, (paid_at - created_at).total_seconds()))
    if current == S.FAILED:
        stock.sell_again(lines)  # released when it failed: take them back as sold, if still there
        if counted := counted_units(order_id):
            stock.count_again(*counted)
    else:
        stock.sell(lines)
    return current
