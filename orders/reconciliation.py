"""Reconciliation: the provider's books against our orders, and the one repair that is safe to make.

The provider's ledger is the witness: a charge in it is money taken, whatever our orders say.
`reconcile` reads the charges of a window, the orders they name and the orders paid in it, and
lists what disagrees (`KINDS`). With `repair=True` it records the charges that no attempt recorded
(an accepted, processing or failed order the books show charged becomes paid, through
`transitions.settle_from_ledger`); everything else is listed and never changed, since giving money
back is a person's decision.

The order of work keeps provider calls out of transactions and makes a silent provider change
nothing: first every read (the window's charges from the provider, the orders from the database,
then a lookup by key at the provider for each paid order whose charge is not among the window's;
no read is in a transaction), and only then the repairs, each in a short transaction of its own.
Reconciling a window while orders are still being charged is safe but may list an order whose
attempt is about to record its charge; a repair of it records the same charge, and the attempt
then finds the order paid and changes nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import NamedTuple

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from payments import gateway
from payments.exceptions import PaymentError
from shop.exceptions import OutOfStock

from . import transitions
from .exceptions import OrderError, TransitionConflict
from .models import Order, OrderStatus

log = logging.getLogger(__name__)

KINDS = (
    "charged_not_paid",  # the books show a charge for an accepted or processing order: repairable
    "failed_but_charged",  # ... for a failed order: repairable while its units are still for sale
    "paid_not_charged",  # paid, but the books show no charge for its key
    "paid_other_charge",  # paid with a charge id that is not the one the books show for it
    "charged_twice",  # more than one charge for one order (an expired key charged again, two keys)
    "unknown_charge",  # a charge that names no order of ours
)
REPAIRABLE = frozenset({"charged_not_paid", "failed_but_charged"})

# Every key we send: `order-<uuid>`, or `order-<uuid>-retry-<n>` after a staff retry (models.Order).
_KEY = re.compile(r"^order-([0-9a-fA-F-]{36})(?:-retry-\d+)?$")
_CHUNK = 1000  # ids per IN (...) query


class LedgerUnavailable(OrderError):
    """The provider's books did not answer: nothing was reconciled and nothing was changed."""


@dataclass(frozen=True)
class Discrepancy:
    kind: str  # one of KINDS
    order_id: uuid.UUID | None
    charge_ids: tuple[str, ...]
    detail: str  # plain words for staff
    repaired: bool


@dataclass(frozen=True)
class Reconciliation:
    since: datetime
    until: datetime
    charges: int  # ledger charges examined
    orders: int  # orders examined
    discrepancies: tuple[Discrepancy, ...]

    def count(self, kind: str) -> int:
        return sum(1 for d in self._of(kind))

    def repaired_count(self, kind: str) -> int:
        return sum(1 for d in self._of(kind) if d.repaired)

    def of_kind(self, kind: str) -> tuple[Discrepancy, ...]:
        return tuple(self._of(kind))

    @property
    def unrepaired(self) -> tuple[Discrepancy, ...]:
        return tuple(d for d in self.discrepancies if not d.repaired)

    @property
    def repairable(self) -> tuple[Discrepancy, ...]:
        """What a run with repair would try to fix (or tried and could not: units sold meanwhile)."""
        return tuple(d for d in self.unrepaired if d.kind in REPAIRABLE)

    def line(self) -> str:
        """Every kind's count (and, for the kinds that can be repaired, how many were), on one line."""
        counts = ", ".join(
            f"{kind} {self.count(kind)}"
            + (f" ({self.repaired_count(kind)} repaired)" if kind in REPAIRABLE else "")
            for kind in KINDS
        )
        return (
            f"reconciled {self.charges} charges, {self.orders} orders: {counts}; "
            f"{len(self.unrepaired)} unrepaired"
        )

    def as_json(self) -> dict:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "charges": self.charges,
            "orders": self.orders,
            "counts": {kind: self.count(kind) for kind in KINDS},
            "repaired": {kind: self.repaired_count(kind) for kind in KINDS},
            "unrepaired": len(self.unrepaired),
            "discrepancies": [
                {
                    **asdict(d),
                    "order_id": str(d.order_id) if d.order_id else None,
                    "charge_ids": list(d.charge_ids),
                }
                for d in self.discrepancies
            ],
        }

    def _of(self, kind: str) -> Iterator[Discrepancy]:
        if kind not in KINDS:
            raise ValueError(f"{kind!r} is not one of {', '.join(KINDS)}")
        return (d for d in self.discrepancies if d.kind == kind)


class _Order(NamedTuple):
    id: uuid.UUID
    status: str
    payment_key: str
    charge_id: str


def reconcile(
    *,
    since: datetime,
    until: datetime | None = None,
    repair: bool = False,
    order_ids: Collection[uuid.UUID] | None = None,
) -> Reconciliation:
    """Compare the provider's charges created in [since, until) (until: now) with our orders.

    The orders examined are those the charges name (their metadata's order_id, else their key)
    and those paid in the window. `order_ids` restricts everything to those orders: the charges of
    other orders are then ignored, not unknown. With `repair`, charges no attempt recorded pay their
    orders (see the module); nothing else is ever changed.

    Call it outside any transaction: it talks to the provider, and each repair commits on its own.
    Raises LedgerUnavailable, having changed nothing, when the provider's books do not answer.
    """
    until = until or timezone.now()
    if since >= until:
        raise ValueError(f"the window is empty: since {since.isoformat()} is not before {until.isoformat()}")
    wanted = frozenset(order_ids) if order_ids is not None else None
    timeout = settings.PAYMENT_LOOKUP_TIMEOUT_SECONDS

    try:
        ledger = list(gateway.list_charges(created_gte=since, created_lt=until, timeout=timeout))
    except PaymentError as exc:
        raise LedgerUnavailable(f"the provider's books did not answer: {exc}") from exc
    named = {charge.charge_id: _named_ids(charge) for charge in ledger}
    # With order_ids only those orders are read, so the charges of others name no order read.
    candidates = {i for ids in named.values() for i in ids if wanted is None or i in wanted}
    orders = _orders(candidates | _paid_in(since, until, wanted))
    by_order: dict[uuid.UUID, list[gateway.LedgerCharge]] = defaultdict(list)
    unknown: list[gateway.LedgerCharge] = []
    for charge in ledger:
        owner = next((i for i in named[charge.charge_id] if i in orders), None)
        if owner is not None:
            by_order[owner].append(charge)
        elif wanted is None:  # with order_ids, another order's charge is not ours to judge
            unknown.append(charge)
    # The last provider reads: a paid order's charge may predate the window, so ask by its key.
    looked_up = _look_up(o for o in orders.values() if o.status == OrderStatus.PAID and not by_order[o.id])

    found: list[Discrepancy] = []
    for order in orders.values():
        found += _compare(order, by_order[order.id], looked_up)
    found += [_unknown(charge) for charge in unknown]
    if repair:
        found = [_repair(d, orders[d.order_id]) if d.kind in REPAIRABLE and d.order_id else d for d in found]
    found.sort(key=lambda d: (KINDS.index(d.kind), str(d.order_id or ""), d.charge_ids))

    result = Reconciliation(
        since=since,
        until=until,
        charges=sum(len(charges) for charges in by_order.values()) + len(unknown),
        orders=len(orders),
        discrepancies=tuple(found),
    )
    for d in result.discrepancies:
        (log.info if d.repaired else log.warning)(
            "reconciliation: %s: %s",
            d.kind,
            d.detail,
            extra={
                "order_id": str(d.order_id) if d.order_id else None,
                "kind": d.kind,
                "charge_ids": list(d.charge_ids),
                "repaired": d.repaired,
            },
        )
    log.info(
        result.line(),
        extra={
            "since": since.isoformat(),
            "until": until.isoformat(),
            "charges": result.charges,
            "orders": result.orders,
            "unrepaired": len(result.unrepaired),
            **{kind: result.count(kind) for kind in KINDS},
        },
    )
    return result


def _named_ids(charge: gateway.LedgerCharge) -> list[uuid.UUID]:
    """The order ids a charge may belong to: its metadata's order_id first, then the one in its key."""
    candidates = [charge.metadata.get("order_id", "")]
    if match := _KEY.match(charge.idempotency_key):
        candidates.append(match.group(1))
    ids: list[uuid.UUID] = []
    for raw in candidates:
        try:
            parsed = uuid.UUID(str(raw))
        except ValueError:
            continue
        if parsed not in ids:
            ids.append(parsed)
    return ids


def _paid_in(since: datetime, until: datetime, wanted: frozenset[uuid.UUID] | None) -> set[uuid.UUID]:
    paid = Order.objects.filter(status=OrderStatus.PAID, paid_at__gte=since, paid_at__lt=until)
    if wanted is not None:
        paid = paid.filter(pk__in=wanted)
    return set(paid.values_list("pk", flat=True))


def _orders(ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, _Order]:
    ids = list(ids)
    rows: dict[uuid.UUID, _Order] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = Order.objects.filter(pk__in=ids[start : start + _CHUNK])
        for row in chunk.values_list("id", "status", "payment_key", "charge_id"):
            rows[row[0]] = _Order(*row)
    return rows


def _look_up(orders: Iterable[_Order]) -> dict[uuid.UUID, gateway.LedgerCharge | None]:
    timeout = settings.PAYMENT_LOOKUP_TIMEOUT_SECONDS
    try:
        return {order.id: gateway.find_charge(order.payment_key, timeout=timeout) for order in orders}
    except PaymentError as exc:
        raise LedgerUnavailable(f"the provider's books did not answer a lookup by key: {exc}") from exc


def _compare(
    order: _Order,
    charges: list[gateway.LedgerCharge],
    looked_up: dict[uuid.UUID, gateway.LedgerCharge | None],
) -> list[Discrepancy]:
    ids = tuple(charge.charge_id for charge in charges)
    found: list[Discrepancy] = []
    if len(charges) > 1:
        keys = sorted({charge.idempotency_key for charge in charges})
        how = "its key expired and charged again" if len(keys) == 1 else f"keys {', '.join(keys)}"
        recorded = f"; the order recorded {order.charge_id}" if order.status == OrderStatus.PAID else ""
        detail = (
            f"the provider charged this {order.status} order {len(charges)} times ({', '.join(ids)}; "
            f"{how}){recorded}: a person decides which to refund"
        )
        found.append(_found("charged_twice", order.id, ids, detail))
    if order.status != OrderStatus.PAID:
        if charges:
            kind = "failed_but_charged" if order.status == OrderStatus.FAILED else "charged_not_paid"
            detail = f"the provider's books show charge {ids[0]} for this order, which is {order.status}"
            found.append(_found(kind, order.id, ids[:1], detail))
    elif not charges:  # paid, and its charge is not among the window's: the lookup by key decides
        other = looked_up.get(order.id)
        if other is None:
            detail = (
                f"paid with charge {order.charge_id or '(none)'}, but the provider's books show no charge "
                f"for its key {order.payment_key}: a person checks before anything is shipped"
            )
            found.append(_found("paid_not_charged", order.id, _ids(order.charge_id), detail))
        elif other.charge_id != order.charge_id:
            found.append(_other_charge(order, other))
    elif len(charges) == 1 and ids[0] != order.charge_id:
        found.append(_other_charge(order, charges[0]))
    return found


def _other_charge(order: _Order, charge: gateway.LedgerCharge) -> Discrepancy:
    detail = (
        f"paid with charge {order.charge_id or '(none)'}, but the provider's books show {charge.charge_id} "
        f"for this order (key {charge.idempotency_key}): a person checks which one stands"
    )
    return _found("paid_other_charge", order.id, _ids(charge.charge_id, order.charge_id), detail)


def _unknown(charge: gateway.LedgerCharge) -> Discrepancy:
    named = charge.metadata.get("order_id")
    detail = (
        f"charge {charge.charge_id} of {charge.amount_minor} {charge.currency.upper()} "
        f"(key {charge.idempotency_key or '(none)'}) names "
        + (f"order {named}, which we do not have" if named else "no order")
        + ": a person finds whose money it is"
    )
    return _found("unknown_charge", None, (charge.charge_id,), detail)


def _ids(*charge_ids: str) -> tuple[str, ...]:
    return tuple(charge_id for charge_id in charge_ids if charge_id)


def _found(kind: str, order_id: uuid.UUID | None, charge_ids: tuple[str, ...], detail: str) -> Discrepancy:
    return Discrepancy(kind=kind, order_id=order_id, charge_ids=charge_ids, detail=detail, repaired=False)


def _repair(found: Discrepancy, order: _Order) -> Discrepancy:
    """Record the books' charge on the order (→ paid), in a transaction of its own."""
    charge_id = found.charge_ids[0]
    detail = f"reconciled: the provider's books show charge {charge_id} for this order's key"
    try:
        with transaction.atomic(durable=True):
            moved_from = transitions.settle_from_ledger(order.id, charge_id=charge_id, detail=detail)
    except OutOfStock as exc:
        return _replace(
            found,
            f"{found.detail}; not repaired: its units were sold to someone else meanwhile (only "
            f"{exc.left} of {exc.name} left, it needs {exc.requested}): a person must refund the charge "
            "or find the unit",
            repaired=False,
        )
    except TransitionConflict:
        now = Order.objects.filter(pk=order.id).values_list("status", "charge_id").first()
        if now == (OrderStatus.PAID, charge_id):  # its own attempt recorded the same charge meanwhile
            return _replace(found, f"{found.detail}; paid meanwhile with that charge: nothing to do", True)
        state = f"{now[0]} with charge {now[1] or '(none)'}" if now else "gone"
        return _replace(found, f"{found.detail}; not repaired: the order is {state} now", repaired=False)
    return _replace(found, f"{found.detail}; repaired: {moved_from} → paid", repaired=True)


def _replace(found: Discrepancy, detail: str, repaired: bool) -> Discrepancy:
    return dataclasses.replace(found, detail=detail, repaired=repaired)
