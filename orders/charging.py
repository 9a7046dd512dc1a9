"""The charge workflow: claim the order, call the provider outside any transaction, record the answer.

The order domain decides (claim, lease, attempt cap, the final status); `payments.gateway` only
talks to the provider.
"""

from __future__ import annotations

import enum
import logging
import time
import uuid

from django.conf import settings
from django.db import connection

from observability import metrics
from payments import gateway
from payments.exceptions import PaymentDeclined, PaymentNotAuthorized, PaymentRejected, PaymentUnavailable

from . import transitions
from .exceptions import TransitionConflict
from .models import FailureCode, Order

log = logging.getLogger(__name__)


class Outcome(enum.Enum):
    PAID = "paid"
    FAILED = "failed"  # declined, rejected, or out of attempts: final
    RETRY = "retry"  # provider unavailable: released to accepted, try again later
    SKIPPED = "skipped"  # not ours to charge: unknown, finished, or claimed by someone else


def charge_order(order_id: uuid.UUID | str, *, timeout: float) -> Outcome:
    """Charge one order at most once, whoever calls this and however often.

    The provider sees the order's own idempotency key on every attempt, so a retry after a
    timeout or a crash returns the first charge instead of making a second one. After
    PAYMENT_MAX_ATTEMPTS claims an unavailable provider fails the order instead of retrying.
    """
    parsed = _parse_id(order_id)
    outcome = Outcome.SKIPPED if parsed is None else _charge(parsed, timeout=timeout)
    metrics.charge_finished(outcome.value)
    log.info("charge %s", outcome.value, extra={"order_id": str(order_id), "outcome": outcome.value})
    return outcome


def _claim(order_id: uuid.UUID) -> Order | None:
    """Claim an accepted order, or one whose previous worker's lease ran out (a redelivery after a crash)."""
    lease = settings.ORDER_LEASE_SECONDS
    order = transitions.claim(order_id, lease_seconds=lease, detail="payment started")
    if order is not None:
        return order
    # Rare, so not tried first: releasing is a write, and most charges find the order accepted.
    if not transitions.release_if_lease_expired(order_id):
        return None
    return transitions.claim(order_id, lease_seconds=lease, detail="payment started")


def _call_provider(order: Order, *, timeout: float) -> gateway.ChargeResult:
    """Call the gateway once, counting the provider's answer and how long it took."""
    started = time.monotonic()
    answer = "unavailable"  # what the provider said, for the metrics; any other exception too
    try:
        result = gateway.charge(
            gateway.ChargeRequest(
                amount_minor=order.amount_minor,
                currency=order.currency,
                idempotency_key=order.payment_key,
                description=f"Order {order.id}",
                metadata={"order_id": str(order.id), "email": order.email},
            ),
            timeout=timeout,
        )
        answer = "charged"
    except PaymentNotAuthorized:
        answer = "unauthorized"
        raise
    except PaymentDeclined:
        answer = "declined"
        raise
    except PaymentRejected:
        answer = "rejected"
        raise
    finally:
        metrics.charge_attempted(answer, time.monotonic() - started)
    return result


def _charge(order_id: uuid.UUID, *, timeout: float) -> Outcome:
    order = _claim(order_id)
    if order is None:
        log.info(
            "order %s not claimable (missing, finished, or another worker has it)",
            order_id,
            extra={"order_id": str(order_id)},
        )
        return Outcome.SKIPPED
    _release_connection()  # the provider takes seconds: nobody else's connection waits on it

    try:
        result = _call_provider(order, timeout=timeout)
    except PaymentNotAuthorized as exc:
        # Our configuration is wrong (PAYMENT_PROVIDER_API_KEY), not the customer's payment: never
        # fail the order for it, whatever its attempts. Hold it (back to accepted) and retry with
        # backoff until the key is fixed; every such attempt is logged at CRITICAL for alerting.
        log.critical(
            "PAYMENT PROVIDER REFUSED OUR CREDENTIALS; order %s held for retry: %s",
            order_id,
            exc,
            extra={"order_id": str(order_id)},
        )
        return _record(
            order_id,
            transitions.release,
            Outcome.RETRY,
            detail="provider refused our API key; held for retry",
        )
    except PaymentDeclined as exc:
        code = FailureCode.DECLINED
        return _record(
            order_id, transitions.mark_failed, Outcome.FAILED, reason=str(exc), code=code, order=order
        )
    except PaymentRejected as exc:
        code = FailureCode.REJECTED
        return _record(
            order_id, transitions.mark_failed, Outcome.FAILED, reason=str(exc), code=code, order=order
        )
    except PaymentUnavailable as exc:
        if order.attempts >= settings.PAYMENT_MAX_ATTEMPTS:
            reason = f"payment provider unavailable after {order.attempts} attempts: {exc}"
            code = FailureCode.UNAVAILABLE
            return _record(
                order_id, transitions.mark_failed, Outcome.FAILED, reason=reason, code=code, order=order
            )
        return _record(order_id, transitions.release, Outcome.RETRY, detail=f"{exc}; will retry")
    detail = f"charged {result.charge_id}" + (
        " (provider replayed an earlier charge)" if result.replayed else ""
    )
    return _record(
        order_id, transitions.mark_paid, Outcome.PAID, charge_id=result.charge_id, detail=detail, order=order
    )


def _release_connection() -> None:
    """Give this thread's database connection back (to the pool, or closed) before a slow call.

    A worker of 200 threads would otherwise hold 200 connections through 3 s provider calls and
    exhaust the database's max_connections; recording the result takes one again. Inside a
    transaction (a test case, a caller's atomic block) the connection stays.
    """
    if not connection.in_atomic_block:
        connection.close()


def _record(order_id: uuid.UUID, action, outcome: Outcome, **kwargs) -> Outcome:
    try:
        action(order_id, **kwargs)
    except TransitionConflict:
        # Our lease ran out and another attempt took over; it holds the same idempotency key,
        # so it records the same charge. Nothing to undo here.
        log.warning(
            "order %s moved on while we charged it; leaving it to the newer attempt",
            order_id,
            extra={"order_id": str(order_id)},
        )
        return Outcome.SKIPPED
    return outcome


def _parse_id(order_id: uuid.UUID | str) -> uuid.UUID | None:
    try:
        return order_id if isinstance(order_id, uuid.UUID) else uuid.UUID(str(order_id))
    except ValueError:
        log.error("ignoring a payment job for a malformed order id %r", order_id)
        return None
