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
            ("accepted", "paid"),  # the reconciliation: the provider's books show a charge
            ("failed", "paid"),  # the reconciliation: a charge that landed after the order failed
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
def test_claim_takes_an_accepted_order_once_with_a_lease_and_returns_it_as_claimed(django_assert_num_queries):
    order = make_order()

    with django_assert_num_queries(1):  # the move, its event and the order read back: one statement
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
        transitions.mark_paid(order_id, token=0, charge_id="ch_late")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("attempt", "status"),
    [(_claim_refused, s) for s in ("processing", "paid", "failed")]
    + [(_payment_refused, s) for s in ("accepted", "paid", "failed")],
)
def test_a_claim_or_payment_from_the_wrong_status_is_refused_and_changes_nothing(attempt, status):
    order = make_order(status=status)
    before = Order.objects.values().get(pk=order.pk)

    attempt(order.id)

    assert Order.objects.values().get(pk=order.pk) == before
    assert order.events.count() == 1  # no event for a move that did not happen


@pytest.mark.django_db
def test_claim_of_an_unknown_order_is_none():
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
def test_mark_paid_records_the_charge_and_time_once():
    order = make_order(status="processing")
    Order.objects.filter(pk=order.pk).update(lease_expires_at=timezone.now() + timedelta(seconds=60))
    before = timezone.now()

    transitions.mark_paid(order.id, token=0, charge_id="ch_123")

    order.refresh_from_db()
    assert (order.status, order.charge_id, order.lease_expires_at) == ("paid", "ch_123", None)
    assert before <= order.paid_at <= timezone.now()
    events = list(order.events.values_list("from_status", "to_status", "detail"))
    assert events[-1] == ("processing", "paid", "charged (ch_123)") and len(events) == 2


@pytest.mark.django_db
def test_mark_failed_keeps_the_reason():
    order = make_order(status="processing")

    transitions.mark_failed(order.id, token=0, reason="Your card was declined.")

    order.refresh_from_db()
    assert (order.status, order.failure_reason) == ("failed", "Your card was declined.")


@pytest.mark.django_db
def test_a_stale_attempt_whose_lease_was_taken_over_changes_nothing(products):
    """Fencing: attempt 1's lease runs out, attempt 2 claims; attempt 1's late moves all miss."""
    order = make_order(product=products["mug"])
    stale = transitions.claim(order.id, lease_seconds=60)
    Order.objects.filter(pk=order.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert transitions.release_if_lease_expired(order.id)
    Order.objects.filter(pk=order.pk).update(next_attempt_at=None)
    current = transitions.claim(order.id, lease_seconds=60)
    assert (stale.claim_token, current.claim_token) == (1, 2)
    before = Order.objects.values().get(pk=order.pk)
    events = order.events.count()

    for late_move in (
        lambda: transitions.mark_paid(order.id, token=stale.claim_token, charge_id="ch_stale"),
        lambda: transitions.mark_failed(order.id, token=stale.claim_token, reason="declined"),
        lambda: transitions.release(order.id, token=stale.claim_token, detail="timed out"),
    ):
        with pytest.raises(TransitionConflict):
            late_move()

    assert Order.objects.values().get(pk=order.pk) == before
    assert order.events.count() == events
    transitions.mark_paid(order.id, token=current.claim_token, charge_id="ch_current")
    assert Order.objects.get(pk=order.pk).charge_id == "ch_current"


@pytest.mark.django_db
def test_an_order_released_after_a_dead_attempt_waits_for_the_provider_to_settle(products, settings):
    settings.PAYMENT_SETTLE_SECONDS = 300
    settings.ORDER_LEASE_SECONDS = 150
    order = make_order(product=products["mug"])
    transitions.claim(order.id, lease_seconds=150)
    expired_at = timezone.now() - timedelta(seconds=1)
    Order.objects.filter(pk=order.pk).update(lease_expires_at=expired_at)

    assert transitions.release_if_lease_expired(order.id)

    # The dead attempt started a lease (150 s) before its expiry; it settles 300 s after its start.
    waits_until = Order.objects.get(pk=order.pk).next_attempt_at
    assert abs((waits_until - (expired_at + timedelta(seconds=150))).total_seconds()) < 0.01
    assert transitions.claim(order.id, lease_seconds=60) is None
