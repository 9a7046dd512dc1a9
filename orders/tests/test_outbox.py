"""The customer's 202 does not wait for the broker: jobs are published after the response."""

import threading
import time
import uuid

import pytest
from rest_framework.test import APIClient

from orders.models import Order
from orders.outbox import Outbox
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


class RecordingSink:
    """Stands in for SQS: records each batch it is handed and takes `seconds` per request."""

    def __init__(self, seconds: float = 0.0):
        self.seconds = seconds
        self.batches: list[list] = []

    def __call__(self, batch) -> None:
        self.batches.append(list(batch))
        time.sleep(self.seconds)


def test_ids_that_arrive_together_share_a_request_of_up_to_ten():
    sink = RecordingSink()
    outbox = Outbox(sink, max_pending=lambda: 100, linger=lambda: 0.2)
    ids = [uuid.uuid4() for _ in range(25)]

    for order_id in ids:
        assert outbox.submit(order_id)
    assert outbox.drain(timeout=5)

    assert sorted(len(batch) for batch in sink.batches) == [5, 10, 10]
    assert sorted(i for batch in sink.batches for i in batch) == sorted(ids)  # each id once


def test_a_steady_trickle_is_gathered_instead_of_sent_one_id_a_request():
    sink = RecordingSink(seconds=0.004)  # about what a SendMessageBatch takes here
    outbox = Outbox(sink, max_pending=lambda: 100, linger=lambda: 0.1)

    for _ in range(30):  # 100 orders/s for 0.3 s
        outbox.submit(uuid.uuid4())
        time.sleep(0.01)
    assert outbox.drain(timeout=5)

    assert sum(len(batch) for batch in sink.batches) == 30
    assert len(sink.batches) <= 8  # one id a request would be 30


def test_a_lone_id_goes_out_after_the_linger_not_later():
    sink = RecordingSink()
    outbox = Outbox(sink, max_pending=lambda: 100, linger=lambda: 0.05)
    order_id = uuid.uuid4()

    started = time.monotonic()
    outbox.submit(order_id)
    assert outbox.drain(timeout=5)

    assert sink.batches == [[order_id]]
    assert time.monotonic() - started < 2  # the linger, not a wait for nine more orders


def test_an_id_wakes_one_idle_publisher_not_all_of_them():
    # Each publisher woken takes the GIL from the request that submitted, before its 202 is sent.
    class CountingOutbox(Outbox):
        checks = 0

        def _may_gather(self) -> bool:
            CountingOutbox.checks += 1
            return super()._may_gather()

    outbox = CountingOutbox(RecordingSink(), max_pending=lambda: 100, linger=lambda: 0.01)
    outbox.submit(uuid.uuid4())  # starts the publishers
    assert outbox.drain(timeout=5)
    time.sleep(0.2)  # every publisher idle, waiting for work
    before = CountingOutbox.checks

    outbox.submit(uuid.uuid4())
    assert outbox.drain(timeout=5)
    time.sleep(0.2)

    # The one woken checks twice (it may gather; then, batch sent, there is nothing left); with a
    # notify_all the four publishers checked 10 times.
    assert CountingOutbox.checks - before == 2
