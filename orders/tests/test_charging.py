"""At-least-once delivery, exactly-once charging: duplicate jobs and racing workers."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from orders import charging, tasks, transitions
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
def test_a_provider_error_is_an_unknown_outcome_that_waits_for_the_provider_to_settle(
    provider, products, settings
):
    settings.PAYMENT_SETTLE_SECONDS = 60
    provider.configure(error_rate=1.0)
    order = make_order(product=products["mug"])
    before = timezone.now()

    outcome = charging.charge_order(order.id, timeout=5)

    order.refresh_from_db()
    assert outcome is charging.Outcome.RETRY
    assert (order.status, order.attempts, order.failure_reason) == ("accepted", 1, "")
    assert order.next_attempt_at >= before + timedelta(seconds=60)
    # Due later: a job that comes early (a duplicate, the sync hand-off) neither claims nor calls.
    requests = provider.stats()["requests"]
    assert charging.charge_order(order.id, timeout=5) is charging.Outcome.RETRY
    assert provider.stats()["requests"] == requests
    assert Order.objects.get(pk=order.pk).attempts == 1


@pytest.mark.django_db
def test_out_of_attempts_the_providers_books_fail_an_order_they_show_no_charge_for(
    provider, products, settings
):
    settings.PAYMENT_MAX_ATTEMPTS = 2
    settings.PAYMENT_SETTLE_SECONDS = 0
    provider.configure(error_rate=1.0)
    order = make_order(product=products["mug"])

    outcomes = [charging.charge_order(order.id, timeout=5) for _ in range(3)]

    order.refresh_from_db()
    assert outcomes == [charging.Outcome.RETRY, charging.Outcome.RETRY, charging.Outcome.FAILED]
    assert order.status == "failed" and order.failure_code == "unavailable"
    assert "after 2 attempts; its books show no charge" in order.failure_reason
    assert provider.stats()["requests"] == 2  # two charges tried, then the books were read
    assert provider.stats()["charges"] == 0


@pytest.mark.django_db
def test_a_charge_whose_answer_is_a_500_is_found_in_the_books_and_paid_never_failed(
    provider, products, settings
):
    settings.PAYMENT_MAX_ATTEMPTS = 2
    settings.PAYMENT_SETTLE_SECONDS = 0
    provider.configure(error_after_charge_rate=1.0)  # charged, answered 500, and the 500 is replayed
    order = make_order(product=products["mug"])

    outcomes = [charging.charge_order(order.id, timeout=5) for _ in range(3)]

    order.refresh_from_db()
    assert outcomes == [charging.Outcome.RETRY, charging.Outcome.RETRY, charging.Outcome.PAID]
    [charge] = provider.charges_for(order)
    assert (order.status, order.charge_id) == ("paid", charge["id"])
    assert "found in the provider's books" in order.events.get(to_status="paid").detail


@pytest.mark.django_db
def test_a_lost_answer_is_retried_with_the_same_key_and_paid_by_the_replay(provider, products, settings):
    settings.PAYMENT_SETTLE_SECONDS = 0
    provider.configure(lost_answer_rate=1.0)  # charged, then the connection drops
    order = make_order(product=products["mug"])

    assert charging.charge_order(order.id, timeout=5) is charging.Outcome.RETRY
    provider.configure(lost_answer_rate=0.0)
    assert charging.charge_order(order.id, timeout=5) is charging.Outcome.PAID

    order.refresh_from_db()
    [charge] = provider.charges_for(order)
    assert order.charge_id == charge["id"]
    assert "replayed" in order.events.get(to_status="paid").detail


@pytest.mark.django_db(transaction=True)
def test_a_409_for_a_key_in_flight_never_fails_the_order_and_the_replay_pays_it(provider, products, settings):
    """A sync checkout timed out while the provider still works on its request; a worker meets it."""
    settings.PAYMENT_SETTLE_SECONDS = 2
    provider.configure(latency_seconds=1.0, concurrency=0)
    order = make_order(product=products["mug"])
    first = threading.Thread(target=lambda: charging.charge_order(order.id, timeout=0.3))
    first.start()  # claims, sends, gives up after 0.3 s: the provider keeps charging for 1 s
    first.join()
    Order.objects.filter(pk=order.pk).update(next_attempt_at=None)  # a worker that does not wait

    outcome = charging.charge_order(order.id, timeout=5)  # meets the first request in flight: 409

    order.refresh_from_db()
    assert outcome is charging.Outcome.RETRY
    assert (order.status, order.failure_code) == ("accepted", "")
    assert provider.stats()["conflicts"] == 1
    time.sleep(2.1)  # settled
    assert charging.charge_order(order.id, timeout=5) is charging.Outcome.PAID  # the first charge, replayed
    assert len(provider.charges_for(order)) == 1
    assert Order.objects.get(pk=order.pk).status == "paid"


@pytest.mark.django_db(transaction=True)
def test_a_timed_out_charge_that_landed_is_paid_from_the_books_not_failed(provider, products, settings):
    settings.PAYMENT_MAX_ATTEMPTS = 1
    settings.PAYMENT_SETTLE_SECONDS = 1
    provider.configure(latency_seconds=0.8)
    order = make_order(product=products["mug"])

    assert charging.charge_order(order.id, timeout=0.2) is charging.Outcome.RETRY  # we gave up...
    deadline = time.monotonic() + 5
    while not provider.charges_for(order):  # ...yet the provider charged
        assert time.monotonic() < deadline, "the provider never finished the charge"
        time.sleep(0.1)
    assert Order.objects.get(pk=order.pk).status == "accepted"
    time.sleep(1.1)

    assert charging.charge_order(order.id, timeout=5) is charging.Outcome.PAID

    order.refresh_from_db()
    [charge] = provider.charges_for(order)
    assert order.charge_id == charge["id"]


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


@pytest.mark.django_db(transaction=True)
def test_a_connection_cut_while_recording_the_charge_is_replaced_and_the_order_paid(
    provider, products, monkeypatch
):
    """A database restart leaves dead connections in the pool: the record is tried once more."""
    order = make_order(product=products["mug"])
    real_mark_paid = transitions.mark_paid
    calls = []

    def dies_once(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise OperationalError("terminating connection due to administrator command")
        return real_mark_paid(*args, **kwargs)

    monkeypatch.setattr(transitions, "mark_paid", dies_once)

    assert charging.charge_order(order.id, timeout=5) is charging.Outcome.PAID

    order.refresh_from_db()
    assert len(calls) == 2 and order.status == "paid"
    assert [c["id"] for c in provider.charges_for(order)] == [order.charge_id]


class _RecordingTask:
    """What `orders.tasks._charge` asks of its Celery task: its retries so far, and `retry`."""

    def __init__(self):
        self.request = type("Request", (), {"retries": 0})()
        self.retried_with: dict = {}

    def retry(self, **options):
        self.retried_with = options
        return RuntimeError("retry")  # the task raises what retry returns


@pytest.mark.django_db
def test_a_job_that_comes_before_its_order_is_due_waits_in_sqs_not_in_the_worker(provider, products):
    """The retry is an SQS message delay (DelaySeconds), not an ETA task held in a worker's memory."""
    order = make_order(product=products["mug"])
    Order.objects.filter(pk=order.pk).update(next_attempt_at=timezone.now() + timedelta(seconds=30))
    task = _RecordingTask()

    with pytest.raises(RuntimeError, match="retry"):
        tasks._charge(task, str(order.id))

    assert task.retried_with["countdown"] == 0
    assert 29 <= task.retried_with["delay_seconds"] <= 30
    assert provider.stats()["requests"] == 0


@pytest.mark.django_db
def test_the_orders_history_says_what_happened_in_words_never_the_providers_host(products, settings):
    settings.PAYMENT_PROVIDER_URL = "http://127.0.0.1:9"  # nothing listens: the connection is refused
    order = make_order(product=products["mug"])

    assert charging.charge_order(order.id, timeout=2) is charging.Outcome.RETRY

    detail = order.events.get(from_status="processing", to_status="accepted").detail
    assert "could not be reached" in detail
    assert "127.0.0.1" not in detail and "Error" not in detail


@pytest.mark.django_db
def test_a_rejected_order_keeps_the_providers_text_for_staff_and_its_history_says_it_in_words(
    provider, products, settings
):
    settings.PAYMENT_PROVIDER_API_KEY = provider.defaults["api_key"]
    order = make_order(product=products["mug"])
    Order.objects.filter(pk=order.pk).update(total="0.00")  # the provider refuses an amount of 0

    assert charging.charge_order(order.id, timeout=5) is charging.Outcome.FAILED

    order.refresh_from_db()
    assert order.failure_code == "rejected" and "400" in order.failure_reason
    assert order.events.get(to_status="failed").detail == "payment request refused by the provider"
