"""Staff actions on orders from the operations console: re-publish a stuck order, retry a failed one.

Each is one short transaction (the change and its `OrderEvent`), then the payment job is published
through the payment-jobs port after commit; a job the broker refuses leaves the order flagged for the
sweeper, as at checkout. Who did it is the caller's to record (the admin writes a LogEntry): the
order's events are shown to the customer, who has no business with staff names.

Retrying a failed order must never charge twice. The provider's idempotency key decides it:
- failed because the provider *declined* (FailureCode.DECLINED): the provider's final answer for
  that key, with nothing charged, and a replay of the key would only repeat the decline. The retry
  gets a fresh key (`order-<id>-retry-<n>`): the old key can never charge, the new one charges once.
- failed for any other reason (the provider unavailable or timing out, a rejected request, a reason
  from before failure codes were recorded): the outcome at the provider is not known to be "nothing
  charged" (a timed-out charge may have landed). The retry keeps the key, so a charge that landed
  is replayed and recorded instead of made again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from shop import stock
from shop.exceptions import OutOfStock

from . import transitions
from .exceptions import OrderError, TransitionConflict
from .models import FailureCode, Order, OrderEvent, OrderStatus
from .publishing import publish_payment_jobs


class ActionRefused(OrderError):
    """The action does not apply to this order as it is now; nothing was changed."""


@dataclass(frozen=True)
class ActionResult:
    order_id: uuid.UUID
    published: bool  # False: the broker refused the job; the sweeper publishes it later
    detail: str


def republish(order_id: uuid.UUID) -> ActionResult:
    """Publish a fresh payment job for an accepted (waiting) order, e.g. one whose message was lost.

    A duplicate job is harmless (only one attempt can claim the order). The order's history gets an
    event from accepted to accepted: not a status move, a note of why another job exists.
    """
    detail = "payment job re-published from the operations console"
    with transaction.atomic(durable=True):
        try:
            transitions.note(order_id, OrderStatus.ACCEPTED, detail=detail, enqueued_at=timezone.now())
        except TransitionConflict:
            raise ActionRefused(_not_in(order_id, OrderStatus.ACCEPTED, "re-published")) from None
    return ActionResult(order_id, publish_payment_jobs([order_id]) == 0, detail)


def retry_failed(order_id: uuid.UUID) -> ActionResult:
    """failed → accepted, for another charge once the cause is fixed, and publish its job.

    Takes the order's limited stock back (it was released when the order failed) in the same
    transaction: if any of it is gone, OutOfStock and nothing changes. A fresh provider key only
    after a decline (see the module).
    """
    with transaction.atomic(durable=True):
        order = Order.objects.select_for_update().filter(pk=order_id).first()
        if order is None or order.status != OrderStatus.FAILED:
            raise ActionRefused(_not_in(order_id, OrderStatus.FAILED, "retried"))
        units, lines = transitions.reserved_units(order_id)
        fields: dict = {}
        if order.failure_code == FailureCode.DECLINED:
            retries = OrderEvent.objects.filter(
                order_id=order_id, from_status=OrderStatus.FAILED, to_status=OrderStatus.ACCEPTED
            ).count()
            fields["payment_key"] = Order.retry_payment_key_for(order.id, retries + 1)
            key_note = "a new provider key (the last one was declined)"
        else:
            key_note = "the same provider key (a charge that landed is replayed, not repeated)"
        failure = transitions.failure_in_words(order.failure_code, order.failure_reason)
        detail = f"retry from the operations console after: {failure}"[:180]
        detail = f"{detail}; {key_note}" + (f"; reserved {lines} again" if lines else "")
        try:
            transitions.transition(
                order_id,
                OrderStatus.FAILED,
                OrderStatus.ACCEPTED,
                detail=detail[:255],
                failure_reason="",
                failure_code="",
                attempts=0,  # a fresh budget of PAYMENT_MAX_ATTEMPTS
                lease_expires_at=None,
                enqueued_at=timezone.now(),
                **fields,
            )
            stock.reserve(units)  # last: the hot rows stay locked to the commit only
            if counted := transitions.counted_units(order_id):
                stock.count_again(*counted)  # staff decided: counted without the limit's check
        except TransitionConflict as exc:
            raise ActionRefused(str(exc)) from exc
        except OutOfStock as exc:
            raise ActionRefused(
                f"Order {order_id} cannot be retried: only {exc.left} of {exc.name} left and it needs "
                f"{exc.requested}. Nothing was changed."
            ) from exc
    return ActionResult(order_id, publish_payment_jobs([order_id]) == 0, detail)


def _not_in(order_id: uuid.UUID, status: str, verb: str) -> str:
    current = Order.objects.filter(pk=order_id).values_list("status", flat=True).first()
    if current is None:
        return f"No order {order_id}."
    return f"Order {order_id} is {current}, not {status}: it cannot be {verb}. Nothing was changed."
