"""The charge workflow: claim the order, call the provider outside any transaction, record the answer.

The order domain decides (claim, lease, attempt cap, the final status); `payments.gateway` only
talks to the provider.
"""

from __future__ import annotations

import enum
import logging
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone

from observability import metrics
from payments import gateway
from payments.exceptions import (
    PaymentDeclined,
    PaymentError,
    PaymentInFlight,
    PaymentNotAuthorized,
    PaymentOutcomeUnknown,
    PaymentRejected,
    PaymentTimeout,
    PaymentUnavailable,
)

from . import transitions
from .exceptions import TransitionConflict
from .models import FailureCode, Order

log = logging.getLogger(__name__)


class Outcome(enum.Enum):
    PAID = "paid"
    FAILED = "failed"  # declined, rejected, or out of attempts: final
    RETRY = "retry"  # no final answer: released to accepted (perhaps not before a time), try again later
    SKIPPED = "skipped"  # not ours to charge: unknown, finished, or claimed by someone else


def charge_order(order_id: uuid.UUID | str, *, timeout: float) -> Outcome:
    """Charge one order at most once, whoever calls this and however often.

    The provider sees the order's own idempotency key on every attempt, so a retry after a
    timeout or a crash returns the first charge instead of making a second one. Only a definite
    answer (charged, declined, rejected) settles the order; an unknown outcome waits for the
    provider to settle and tries the same key again. After PAYMENT_MAX_ATTEMPTS the provider's books
    decide: a charge for the key pays the order, none fails it.
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
        if transitions.due_at(order_id) is not None:
            # Waiting for the provider to settle an earlier attempt: this job came early (a sync
            # checkout's hand-off, a duplicate). Its caller sends it again for then.
            return Outcome.RETRY
        log.info(
            "order %s not claimable (missing, finished, or another worker has it)",
            order_id,
            extra={"order_id": str(order_id)},
        )
        return Outcome.SKIPPED
    _release_connection()  # the provider takes seconds: nobody else's connection waits on it
    token = order.claim_token
    if order.attempts > settings.PAYMENT_MAX_ATTEMPTS:
        return _settle_by_lookup(order, token)

    started = timezone.now()
    # A wall-clock deadline inside the lease: past the lease another attempt may take the order.
    lease_left = (order.lease_expires_at - started).total_seconds() - 1 if order.lease_expires_at else timeout
    try:
        result = _call_provider(order, timeout=min(timeout, lease_left))
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
            order_id, transitions.release, Outcome.RETRY, token=token, uncounted=True,
            detail="provider refused our API key; held for retry",
        )  # fmt: skip
    except PaymentDeclined as exc:
        return _record(
            order_id, transitions.mark_failed, Outcome.FAILED, token=token, reason=str(exc),
            code=FailureCode.DECLINED, order=order,
        )  # fmt: skip
    except PaymentRejected as exc:
        return _record(
            order_id, transitions.mark_failed, Outcome.FAILED, token=token, reason=str(exc),
            code=FailureCode.REJECTED, order=order,
        )  # fmt: skip
    except PaymentOutcomeUnknown as exc:
        # It may have charged. Never a failure: wait until the provider has settled this request,
        # then the same key gets its answer replayed (or, past the attempts, a lookup tells).
        settle = settings.PAYMENT_SETTLE_SECONDS
        _log_no_answer(order_id, exc)
        return _record(
            order_id, transitions.release, Outcome.RETRY, token=token,
            detail=f"payment outcome not known yet ({_in_words(exc)}); tried again in {settle}s",
            not_before=started + timedelta(seconds=settle),
        )  # fmt: skip
    except PaymentUnavailable as exc:
        # The request never reached the provider. Out of attempts, the next claim asks the provider
        # what earlier attempts (which may have reached it) did: after they have all settled.
        last = order.attempts >= settings.PAYMENT_MAX_ATTEMPTS
        not_before = started + timedelta(seconds=settings.PAYMENT_SETTLE_SECONDS) if last else None
        _log_no_answer(order_id, exc)
        detail = f"{_in_words(exc)}; " + ("the provider's books decide next" if last else "will retry")
        return _record(
            order_id, transitions.release, Outcome.RETRY, token=token, detail=detail, not_before=not_before
        )
    detail = f"charged {result.charge_id}" + (
        " (provider replayed an earlier charge)" if result.replayed else ""
    )
    return _record(
        order_id, transitions.mark_paid, Outcome.PAID, token=token, charge_id=result.charge_id,
        detail=detail, order=order,
    )  # fmt: skip


def _in_words(exc: PaymentUnavailable) -> str:
    """What an order's history (shown to whoever holds its id) says of a missing answer: never the
    exception's text, which can name the provider's host and our client library's internals."""
    if isinstance(exc, PaymentInFlight):
        return "the provider was still working on it"
    if isinstance(exc, PaymentTimeout):
        return "the provider did not answer in time"
    if isinstance(exc, PaymentOutcomeUnknown):
        return "the provider's answer was lost or unreadable"
    return "the provider could not be reached"


def _log_no_answer(order_id: uuid.UUID, exc: PaymentUnavailable) -> None:
    log.info(
        "order %s: no definite answer from the provider: %s",
        order_id,
        exc,
        extra={"order_id": str(order_id), "error": type(exc).__name__},
    )


def _settle_by_lookup(order: Order, token: int) -> Outcome:
    """Out of attempts: the provider's books decide. A charge for the key pays the order; none fails
    it; a lookup that gets no answer holds the order for later (an unknown is never a failure).

    Claimed only once PAYMENT_SETTLE_SECONDS had passed since the last attempt started, so every
    request sent with the key has settled and is in the books if it charged.
    """
    tried = order.attempts - 1
    try:
        found = gateway.find_charge(order.payment_key, timeout=settings.PAYMENT_LOOKUP_TIMEOUT_SECONDS)
    except PaymentError as exc:
        (log.critical if isinstance(exc, PaymentNotAuthorized) else log.warning)(
            "order %s: out of attempts and the provider's books did not answer (%s); held",
            order.id,
            exc,
            extra={"order_id": str(order.id)},
        )
        return _record(
            order.id, transitions.release, Outcome.RETRY, token=token,
            detail=f"provider unavailable after {tried} attempts and its books did not answer; held",
        )  # fmt: skip
    if found is not None:
        return _record(
            order.id, transitions.mark_paid, Outcome.PAID, token=token, charge_id=found.charge_id,
            detail=f"charged {found.charge_id} (found in the provider's books after {tried} attempts)",
            order=order,
        )  # fmt: skip
    reason = f"payment provider unavailable after {tried} attempts; its books show no charge for this order"
    return _record(
        order.id, transitions.mark_failed, Outcome.FAILED, token=token, reason=reason,
        code=FailureCode.UNAVAILABLE, order=order,
    )  # fmt: skip


def _release_connection() -> None:
    """Give this thread's database connection back (to the pool, or closed) before a slow call.

    A worker of 200 threads would otherwise hold 200 connections through 3 s provider calls and
    exhaust the database's max_connections; recording the result takes one again. Inside a
    transaction (a test case, a caller's atomic block) the connection stays.
    """
    if not connection.in_atomic_block:
        connection.close()


def _record(order_id: uuid.UUID, action, outcome: Outcome, *, token: int, **kwargs) -> Outcome:
    """Make the attempt's move, fenced by its claim's token; a stale attempt changes nothing.

    A connection that died under us (the database restarted, or a pooled connection it had cut) is
    replaced once and the move tried again: the fence makes a second try safe even if the first one
    committed and only its answer was lost (the second then finds the order moved: SKIPPED).
    """
    for last_try in (False, True):
        try:
            action(order_id, token=token, **kwargs)
        except TransitionConflict:
            # Our lease ran out and another attempt took over (or the reconciliation settled it); the
            # order's key is the same, so whoever holds it records the same charge. Nothing to undo.
            log.warning(
                "stale attempt %s on order %s: it moved on while we charged it; %s not recorded",
                token,
                order_id,
                outcome.value,
                extra={"order_id": str(order_id), "claim_token": token, "outcome": outcome.value},
            )
            return Outcome.SKIPPED
        except (OperationalError, InterfaceError):
            if last_try or connection.in_atomic_block:
                raise
            log.warning(
                "order %s: the database connection died recording %s; once more on a fresh one",
                order_id,
                outcome.value,
                extra={"order_id": str(order_id), "outcome": outcome.value},
            )
            connection.close()  # a broken connection goes back to the pool only to be discarded
            continue
        return outcome
    raise AssertionError("unreachable")


def _parse_id(order_id: uuid.UUID | str) -> uuid.UUID | None:
    try:
        return order_id if isinstance(order_id, uuid.UUID) else uuid.UUID(str(order_id))
    except ValueError:
        log.error("ignoring a payment job for a malformed order id %r", order_id)
        return None
