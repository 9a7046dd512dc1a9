"""The shop counts each thing where it happens (orders/transitions.py, charging, idempotency,
throttling, the sweeper's sample), once, after commit; the web tags its lines with a request id."""

import json
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.utils import timezone
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from orders import jobs as port
from orders import monitoring, selectors, transitions
from orders.models import Order, OrderStatus
from tests.factories import ProductFactory, make_order

BODY = {"email": "buyer@example.com", "items": [{"sku": "mug", "quantity": 1}]}


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def post(api: APIClient, path: str = "/api/orders/async", body=BODY, **headers):
    return api.post(path, data=json.dumps(body), content_type="application/json", **headers)


@pytest.fixture
def api(products) -> APIClient:
    return APIClient()


def test_an_async_checkout_counts_one_accepted_order_and_one_timed_answer(
    api, published_jobs, django_capture_on_commit_callbacks
):
    accepted = sample("flashsale_orders_total", status="accepted", mode="async")
    answered = sample("flashsale_checkout_duration_seconds_count", mode="async")

    with django_capture_on_commit_callbacks(execute=True):
        response = post(api)

    assert response.status_code == 202
    assert sample("flashsale_orders_total", status="accepted", mode="async") == accepted + 1
    assert sample("flashsale_checkout_duration_seconds_count", mode="async") == answered + 1


def test_an_order_refused_for_stock_is_timed_but_never_counted_as_accepted(
    api, published_jobs, django_capture_on_commit_callbacks
):
    ProductFactory(sku="rare", stock=0)
    accepted = sample("flashsale_orders_total", status="accepted", mode="async")

    with django_capture_on_commit_callbacks(execute=True):
        response = post(api, body={"email": "a@example.com", "items": [{"sku": "rare", "quantity": 1}]})

    assert response.status_code == 409
    assert sample("flashsale_orders_total", status="accepted", mode="async") == accepted
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_paid_counts_by_mode_and_observes_the_time_since_acceptance(django_capture_on_commit_callbacks):
    order = make_order(status=OrderStatus.PROCESSING)
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(seconds=45))
    paid = sample("flashsale_orders_total", status="paid", mode=order.mode)
    within_60 = sample("flashsale_order_accepted_to_paid_seconds_bucket", le="60.0")
    within_30 = sample("flashsale_order_accepted_to_paid_seconds_bucket", le="30.0")

    with django_capture_on_commit_callbacks(execute=True):
        transitions.mark_paid(order.id, token=0, charge_id="ch_1")

    assert sample("flashsale_orders_total", status="paid", mode=order.mode) == paid + 1
    assert sample("flashsale_order_accepted_to_paid_seconds_bucket", le="60.0") == within_60 + 1
    assert sample("flashsale_order_accepted_to_paid_seconds_bucket", le="30.0") == within_30  # 45 s


@pytest.mark.django_db
def test_a_final_move_that_loses_its_compare_and_set_counts_nothing(django_capture_on_commit_callbacks):
    order = make_order(status=OrderStatus.PAID)
    failed = sample("flashsale_orders_total", status="failed", mode=order.mode)

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(Exception):  # noqa: B017
        transitions.mark_failed(order.id, token=0, reason="declined")

    assert sample("flashsale_orders_total", status="failed", mode=order.mode) == failed


def test_a_replayed_idempotency_key_is_counted(api, published_jobs):
    replays = sample("flashsale_idempotent_replays_total", scope="checkout-async")

    first = post(api, HTTP_IDEMPOTENCY_KEY="k-1")
    again = post(api, HTTP_IDEMPOTENCY_KEY="k-1")

    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()
    assert sample("flashsale_idempotent_replays_total", scope="checkout-async") == replays + 1


def test_a_429_is_counted_by_scope(api, published_jobs, settings):
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(match=f"{settings.CACHES['default']['KEY_PREFIX']}:*throttle:*"):
        client.delete(key)
    settings.CHECKOUT_RATE_LIMIT = "1/min"
    throttled = sample("flashsale_throttled_requests_total", scope="checkout")

    answers = [post(api, REMOTE_ADDR="198.51.100.9").status_code for _ in range(3)]

    assert answers == [202, 429, 429]
    assert sample("flashsale_throttled_requests_total", scope="checkout") == throttled + 2


def test_a_request_id_is_echoed_when_sane_and_made_when_missing_or_not(api, published_jobs):
    given = post(api, HTTP_X_REQUEST_ID="req-42")
    made = post(api)
    refused = post(api, HTTP_X_REQUEST_ID="has spaces\tand tabs")

    assert given.headers["X-Request-ID"] == "req-42"
    assert len(made.headers["X-Request-ID"]) == 32
    assert (
        refused.headers["X-Request-ID"] != "has spaces\tand tabs"
        and len(refused.headers["X-Request-ID"]) == 32
    )


@pytest.mark.django_db
def test_the_oldest_waiting_age_is_the_oldest_accepted_order_and_none_without_one():
    assert selectors.oldest_waiting_order_age_seconds() is None
    old, newer, claimed = make_order(), make_order(), make_order(status=OrderStatus.PROCESSING)
    now = timezone.now()
    Order.objects.filter(pk=old.pk).update(created_at=now - timedelta(seconds=120))
    Order.objects.filter(pk=newer.pk).update(created_at=now - timedelta(seconds=10))
    Order.objects.filter(pk=claimed.pk).update(created_at=now - timedelta(seconds=900))  # not waiting

    assert 120 <= selectors.oldest_waiting_order_age_seconds() < 130


@pytest.mark.django_db
def test_the_sweepers_sample_sets_the_backlog_and_queue_gauges(jobs):
    waiting = make_order()
    unpublished = make_order()  # enqueued_at null, as every order is until SQS takes its job
    Order.objects.filter(pk=waiting.pk).update(
        created_at=timezone.now() - timedelta(seconds=300), enqueued_at=timezone.now()
    )  # SQS took its job
    jobs.publish([waiting.id, unpublished.id])

    monitoring.sample_backlog()

    assert 300 <= sample("flashsale_oldest_waiting_order_age_seconds") < 310
    assert sample("flashsale_outbox_unpublished_orders") == 1
    assert sample("flashsale_sqs_waiting_messages") == 2  # the recorder's two jobs


@pytest.mark.django_db
def test_a_queue_that_does_not_answer_is_counted_and_the_sample_goes_on(monkeypatch):

    class Down:
        def depth(self):
            raise port.JobsUnavailable("connection refused")

    monkeypatch.setattr(port, "payment_jobs", lambda: Down())
    failures = sample("flashsale_sweeper_sample_failures_total", source="queue")
    make_order()

    monitoring.sample_backlog()

    assert sample("flashsale_sweeper_sample_failures_total", source="queue") == failures + 1
    assert sample("flashsale_oldest_waiting_order_age_seconds") >= 0


def test_settings_keep_metrics_ports_off_and_emf_off_unless_set():
    assert settings.WORKER_METRICS_PORT == 0 and settings.SWEEPER_METRICS_PORT == 0
    assert settings.METRICS_EMF is False and settings.METRICS_ADDR == "127.0.0.1"
