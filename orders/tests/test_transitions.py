import itertools
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
def test_claim_takes_an_accepted_order_once_with_a_lease():
    order = make_order()

    assert transitions.claim(order.id, lease_seconds=60) is True
    assert transitions.claim(order.id, lease_seconds=60) is False

    order.refresh_from_db()
    assert order.status == "processing"
    assert order.attempts == 1
    assert order.lease_expires_at > timezone.now() + timedelta(seconds=50)


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
def test_mark_paid_records_the_charge_and_time():
    order = make_order(status="processing")

    transitions.mark_paid(order.id, charge_id="ch_123")

    order.refresh_from_db()
    assert (order.status, order.charge_id) == ("paid", "ch_123")
    assert order.paid_at is not None


@pytest.mark.django_db
def test_mark_failed_keeps_the_reason():
    order = make_order(status="processing")

    transitions.mark_failed(order.id, reason="Your card was declined.")

    order.refresh_from_db()
    assert (order.status, order.failure_reason) == ("failed", "Your card was declined.")
