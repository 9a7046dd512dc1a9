import itertools
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from orders import transitions
from orders.exceptions import IllegalTransition, TransitionConflict
from orders.models import Order, OrderEvent, OrderStatus
from tests.factories import make_order

STATUSES = [s.value for s in OrderStatus]
ALLOWED = [(a, b) for a, targets in transitions.ALLOWED_TRANSITIONS.items() if a for b in targets]
ILLEGAL = [(a, b) for a, b in itertools.product(STATUSES, STATUSES) if (a, b) not in ALLOWED]


def test_the_table_is_the_documented_lifecycle():
    assert sorted(ALLOWED) == sorted(
        [
            ("accepted", "processing"),
            ("processing", "paid"),
            ("processing", "failed"),
            ("processing", "accepted"),
            ("failed", "accepted"),  # staff's retry (orders/operations.py)
        ]
    )


@pytest.mark.django_db
@pytest.mark.parametrize(("from_status", "to_status"), ALLOWED)
def test_an_allowed_move_changes_status_and_writes_exactly_one_event(from_status, to_status):
    order = make_order(status=from_status)
    events_before = order.events.count()

    transitions.transition(order.id, from_status, to_status, detail="why")

    order.refresh_from_db()
    assert order.status == to_status
    assert order.events.count() == events_before + 1
    event = order.events.last()
    assert (event.from_status, event.to_status, event.detail) == (from_status, to_status, "why")


@pytest.mark.django_db
@pytest.mark.parametrize(("from_status", "to_status"), ILLEGAL)
def test_an_illegal_move_is_refused_and_changes_nothing(from_status, to_status):
    order = make_order(status=from_status)
    before = Order.objects.values().get(pk=order.pk)

    with pytest.raises(IllegalTransition):
        transitions.transition(order.id, from_status, to_status)

    assert Order.objects.values().get(pk=order.pk) == before
    assert OrderEvent.objects.filter(order=order).count() == 1


@pytest.mark.django_db
def test_a_move_from_a_status_the_order_has_left_is_a_conflict_and_changes_nothing():
    order = make_order(status="paid")

    with pytest.raises(TransitionConflict):
        transitions.transition(order.id, "processing", "failed", detail="late")

    order.refresh_from_db()
    assert order.status == "paid"
    assert order.events.count() == 1


@pytest.mark.django_db
def test_claim_takes_an_accepted_order_once_with_a_lease_and_returns_it_as_claimed(statement_path):
    order = make_order()

    claimed = transitions.claim(order.id, lease_seconds=60, detail="payment started")
    assert transitions.claim(order.id, lease_seconds=60) is None  # taken: nothing moves twice

    order.refresh_from_db()
    assert (order.status, order.attempts) == ("processing", 1)
    assert order.lease_expires_at > timezone.now() + timedelta(seconds=50)
    # What the caller gets is the order as it now is, every field the charge needs included.
    assert isinstance(claimed, Order)
    assert Order.objects.values().get(pk=order.pk) == {
        f.attname: getattr(claimed, f.attname) for f in Order._meta.concrete_fields
    }
    events = list(order.events.values_list("from_status", "to_status", "detail"))
    assert events[-1] == ("accepted", "processing", "payment started") and len(events) == 2


def _claim_refused(order_id) -> None:
    assert transitions.claim(order_id, lease_seconds=60) is None


def _payment_refused(order_id) -> None:
    with pytest.raises(TransitionConflict):
        transitions.mark_paid(order_id, charge_id="ch_late")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("attempt", "status"),
    [(_claim_refused, s) for s in ("processing", "paid", "failed")]
    + [(_payment_refused, s) for s in ("accepted", "paid", "failed")],
)
def test_a_claim_or_payment_from_the_wrong_status_is_refused_and_changes_nothing(
    statement_path, attempt, status
):
    order = make_order(status=status)
    before = Order.objects.values().get(pk=order.pk)

    attempt(order.id)

    assert Order.objects.values().get(pk=order.pk) == before
    assert order.events.count() == 1  # no event for a move that did not happen


@pytest.mark.django_db
def test_claim_of_an_unknown_order_is_none(statement_path):
    assert transitions.claim(uuid.uuid4(), lease_seconds=60) is None
    assert not OrderEvent.objects.exists()


@pytest.mark.django_db
def test_only_an_expired_lease_is_released():
    order = make_order()
    transitions.claim(order.id, lease_seconds=60)

    assert transitions.release_if_lease_expired(order.id) is False
    Order.objects.filter(pk=order.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert transitions.release_if_lease_expired(order.id) is True

    order.refresh_from_db()
    assert order.status == "accepted"
    assert order.lease_expires_at is None
    assert order.events.last().detail.startswith("lease expired")


@pytest.mark.django_db
def test_mark_paid_records_the_charge_and_time_once(statement_path):
    order = make_order(status="processing")
    Order.objects.filter(pk=order.pk).update(lease_expires_at=timezone.now() + timedelta(seconds=60))
    before = timezone.now()

    transitions.mark_paid(order.id, charge_id="ch_123")

    order.refresh_from_db()
    assert (order.status, order.charge_id, order.lease_expires_at) == ("paid", "ch_123", None)
    assert before <= order.paid_at <= timezone.now()
    events = list(order.events.values_list("from_status", "to_status", "detail"))
    assert events[-1] == ("processing", "paid", "charged (ch_123)") and len(events) == 2


@pytest.mark.django_db
def test_mark_failed_keeps_the_reason():
    order = make_order(status="processing")

    transitions.mark_failed(order.id, reason="Your card was declined.")

    order.refresh_from_db()
    assert (order.status, order.failure_reason) == ("failed", "Your card was declined.")
