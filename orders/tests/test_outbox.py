"""The customer's 202 does not wait for the broker: jobs are published after the response."""

import threading

import pytest
from rest_framework.test import APIClient

from orders.models import Order
from orders.publishing import drain_outbox

BODY = {"email": "buyer@example.com", "items": [{"sku": "mug", "quantity": 1}]}


@pytest.mark.django_db(transaction=True)
def test_an_async_checkout_answers_while_the_broker_is_still_busy(products, jobs):
    broker_answers = threading.Event()
    published: list = []

    def slow_broker(order_id):
        broker_answers.wait(10)  # a broker that takes its time (or retries against an outage)
        published.append(order_id)
        return True

    jobs.accept = slow_broker

    response = APIClient().post("/api/orders/async", BODY, format="json")

    assert response.status_code == 202
    assert published == []  # answered before the job went out
    broker_answers.set()
    assert drain_outbox(timeout=10)
    assert [str(i) for i in published] == [response.json()["id"]]


@pytest.mark.django_db(transaction=True)
def test_a_job_the_broker_refuses_leaves_the_order_for_the_sweeper(products, jobs):
    jobs.accept = lambda order_id: False

    response = APIClient().post("/api/orders/async", BODY, format="json")

    assert response.status_code == 202
    assert drain_outbox(timeout=10)
    assert Order.objects.get(pk=response.json()["id"]).enqueued_at is None


@pytest.mark.django_db(transaction=True)
def test_a_full_backlog_leaves_new_orders_to_the_sweeper(products, settings, published_jobs):
    settings.OUTBOX_MAX_PENDING = 0  # as if thousands of jobs were already waiting for a slow broker

    response = APIClient().post("/api/orders/async", BODY, format="json")

    assert response.status_code == 202
    assert published_jobs() == []
    assert Order.objects.get(pk=response.json()["id"]).enqueued_at is None
