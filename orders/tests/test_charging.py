"""At-least-once delivery, exactly-once charging: duplicate jobs and racing workers."""

from datetime import timedelta

import pytest
from django.utils import timezone

from orders import charging
from orders.models import Order
from orders.tasks import charge_order_task
from tests.factories import make_order
from tests.fixtures import at_once, wait_for_status


def test_a_job_delivered_three_times_to_two_workers_charges_once(start_worker, provider, products):
    start_worker("a")
    start_worker("b")
    provider.configure(latency_seconds=0.3)
    orders = [make_order(product=products["mug"]) for _ in range(5)]

    for order in orders:
        for _ in range(3):
            charge_order_task.apply_async((str(order.id),))

    for order in orders:
        assert wait_for_status(order, "paid", "failed").status == "paid"
        assert len(provider.charges_for(order)) == 1
        assert order.events.filter(to_status="processing").count() == 1
    assert provider.stats()["keys_charged_more_than_once"] == 0


@pytest.mark.django_db(transaction=True)
def test_racing_attempts_on_one_order_have_one_winner(provider, products):
    provider.configure(latency_seconds=0.1, concurrency=0)
    order = make_order(product=products["mug"])

    outcomes = at_once(lambda: charging.charge_order(order.id, timeout=5), 8)

    assert outcomes.count(charging.Outcome.PAID) == 1
    assert outcomes.count(charging.Outcome.SKIPPED) == 7
    assert len(provider.charges_for(order)) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("bad_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_a_job_for_a_malformed_or_unknown_order_is_skipped_and_charges_nothing(provider, bad_id):
    assert charging.charge_order(bad_id, timeout=5) is charging.Outcome.SKIPPED
    assert provider.stats()["requests"] == 0


@pytest.mark.django_db
def test_a_transient_error_releases_the_order_for_a_retry(provider, products):
    provider.configure(error_rate=1.0)
    order = make_order(product=products["mug"])

    outcome = charging.charge_order(order.id, timeout=5)

    order.refresh_from_db()
    assert outcome is charging.Outcome.RETRY
    assert order.status == "accepted"
    assert order.attempts == 1


@pytest.mark.django_db
def test_the_last_attempt_fails_the_order_with_the_reason(provider, products, settings):
    settings.PAYMENT_MAX_ATTEMPTS = 2
    provider.configure(error_rate=1.0)
    order = make_order(product=products["mug"])

    outcomes = [charging.charge_order(order.id, timeout=5) for _ in range(2)]

    order.refresh_from_db()
    assert outcomes == [charging.Outcome.RETRY, charging.Outcome.FAILED]
    assert order.status == "failed"
    assert "after 2 attempts" in order.failure_reason
    assert provider.stats()["charges"] == 0


@pytest.mark.django_db
def test_an_order_already_paid_is_not_charged_again(provider, products):
    order = make_order(product=products["mug"])
    charging.charge_order(order.id, timeout=5)

    assert charging.charge_order(order.id, timeout=5) is charging.Outcome.SKIPPED
    assert provider.stats()["requests"] == 1
    assert Order.objects.get(pk=order.pk).status == "paid"


@pytest.mark.django_db
def test_a_redelivered_job_takes_over_an_order_whose_worker_died(provider, products):
    order = make_order(product=products["mug"], status="processing")
    Order.objects.filter(pk=order.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))

    assert charging.charge_order(order.id, timeout=5) is charging.Outcome.PAID

    steps = [(e.from_status, e.to_status) for e in order.events.all()][1:]
    assert steps == [("processing", "accepted"), ("accepted", "processing"), ("processing", "paid")]
    assert len(provider.charges_for(order)) == 1


@pytest.mark.django_db
def test_an_order_another_worker_holds_is_left_alone(provider, products):
    order = make_order(product=products["mug"], status="processing")
    Order.objects.filter(pk=order.pk).update(lease_expires_at=timezone.now() + timedelta(seconds=60))

    assert charging.charge_order(order.id, timeout=5) is charging.Outcome.SKIPPED
    assert provider.stats()["requests"] == 0


@pytest.mark.django_db
def test_a_refused_api_key_holds_the_order_and_never_fails_it_for_our_mistake(
    provider, products, settings, caplog
):
    """401/403 is our configuration, not the customer's card: the order waits (accepted) and we alert."""
    settings.PAYMENT_MAX_ATTEMPTS = 2
    provider.configure(api_key="sk_test_rotated")  # the provider no longer takes our key
    order = make_order(product=products["mug"])

    outcomes = [charging.charge_order(order.id, timeout=5) for _ in range(3)]  # past the attempt cap

    order.refresh_from_db()
    assert outcomes == [charging.Outcome.RETRY] * 3
    assert (order.status, order.failure_reason) == ("accepted", "")
    assert provider.stats()["charges"] == 0
    alerts = [r for r in caplog.records if r.levelname == "CRITICAL"]
    assert len(alerts) == 3 and "REFUSED OUR CREDENTIALS" in alerts[0].getMessage()

    provider.configure(api_key=provider.defaults["api_key"])  # the key is fixed: the next attempt charges

    assert charging.charge_order(order.id, timeout=5) is charging.Outcome.PAID
