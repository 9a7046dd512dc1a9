"""The customer's 202 does not wait for the broker: jobs are published after the response.

An order is null (`enqueued_at`) until SQS takes its job; an exiting web process publishes what
its outbox holds (gunicorn's worker_exit), and what a killed one held is the sweeper's.
"""

import logging
import os
import signal
import threading
import time
import uuid

import httpx
import psutil
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from orders.models import Order
from orders.outbox import Outbox
from orders.publishing import drain_outbox, drain_outbox_before_exit
from orders.recovery import sweep_stuck_orders
from tests.fixtures import database_url

from .test_sweeper import queued_order_ids

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
def test_an_order_is_null_until_the_broker_takes_its_job_and_stamped_after(products, jobs):
    broker_answers = threading.Event()
    jobs.accept = lambda order_id: broker_answers.wait(10)

    response = APIClient().post("/api/orders/async", BODY, format="json")
    order = Order.objects.get(pk=response.json()["id"])

    assert order.enqueued_at is None  # placed, its job not taken yet
    answered = timezone.now()
    broker_answers.set()
    assert drain_outbox(timeout=10)
    order.refresh_from_db()
    assert order.enqueued_at is not None
    assert order.enqueued_at >= answered  # written when the broker took it, not at the insert


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


def test_a_flushing_drain_does_not_wait_for_the_linger():
    sink = RecordingSink()
    outbox = Outbox(sink, max_pending=lambda: 100, linger=lambda: 30)
    ids = [uuid.uuid4() for _ in range(3)]
    for order_id in ids:
        outbox.submit(order_id)

    started = time.monotonic()
    assert outbox.drain(timeout=5, flush=True)

    assert time.monotonic() - started < 2  # not the 30 s linger
    assert sink.batches == [ids]


def test_ids_in_a_batch_the_sink_has_not_returned_from_are_unsent():
    sending, answer = threading.Event(), threading.Event()

    def stuck_sink(batch) -> None:
        sending.set()
        answer.wait(10)

    outbox = Outbox(stuck_sink, max_pending=lambda: 100, linger=lambda: 30)
    ids = [uuid.uuid4() for _ in range(2)]
    for order_id in ids:
        outbox.submit(order_id)

    assert not outbox.drain(timeout=0.2, flush=True)  # flushed to the sink, which hangs
    assert sending.is_set()
    assert sorted(outbox.unsent()) == sorted(ids)
    answer.set()
    assert outbox.drain(timeout=5)
    assert outbox.unsent() == []


def test_a_sink_that_fails_does_not_stop_the_publishers():
    failures: list = []

    def flaky_sink(batch) -> None:
        if len(failures) < 4:  # as many failures as there are publishers
            failures.append(batch)
            raise RuntimeError("the database went away")

    outbox = Outbox(flaky_sink, max_pending=lambda: 100, linger=lambda: 0.01)
    for _ in range(4):
        outbox.submit(uuid.uuid4())
        assert outbox.drain(timeout=5)

    last = uuid.uuid4()
    outbox.submit(last)
    assert outbox.drain(timeout=5)  # a publisher was left to send it
    assert len(failures) == 4 and outbox.unsent() == []


@pytest.mark.django_db(transaction=True)
def test_an_exiting_process_publishes_what_its_outbox_holds_without_waiting_for_the_linger(
    products, jobs, settings
):
    settings.OUTBOX_LINGER_SECONDS = 30
    ids = [APIClient().post("/api/orders/async", BODY, format="json").json()["id"] for _ in range(3)]
    assert Order.objects.filter(pk__in=ids, enqueued_at__isnull=True).count() == 3  # lingering

    started = time.monotonic()
    assert drain_outbox_before_exit() == []

    assert time.monotonic() - started < 5
    assert sorted(map(str, jobs.published)) == sorted(ids)
    assert not Order.objects.filter(pk__in=ids, enqueued_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_what_an_exiting_process_cannot_publish_in_time_is_logged_and_left_to_the_sweeper(
    products, jobs, settings, caplog
):
    settings.OUTBOX_DRAIN_SECONDS = 0.3
    broker_answers = threading.Event()
    jobs.accept = lambda order_id: broker_answers.wait(10)  # SQS hangs
    ids = [APIClient().post("/api/orders/async", BODY, format="json").json()["id"] for _ in range(2)]

    with caplog.at_level(logging.WARNING, logger="orders.publishing"):
        unsent = drain_outbox_before_exit()

    assert sorted(map(str, unsent)) == sorted(ids)
    assert Order.objects.filter(pk__in=ids, enqueued_at__isnull=True).count() == 2
    [record] = [r for r in caplog.records if r.name == "orders.publishing"]
    assert "2 of its 2 payment jobs unpublished" in record.getMessage()
    assert sorted(record.order_ids) == sorted(ids)
    broker_answers.set()
    assert drain_outbox(timeout=10)


# --- a real gunicorn: its worker processes signalled with jobs in their outbox ------------------


@pytest.fixture
def lingering_web(stack, transactional_db, products, empty_queue):
    """gunicorn (one worker process) on the test database, whose outbox holds ids for 30 s."""
    web = stack.start_web(
        name="web-outbox", workers=1, threads=4, DATABASE_URL=database_url(),
        OUTBOX_LINGER_SECONDS="30", LOG_FORMAT="json",
    )  # fmt: skip
    try:
        yield web
    finally:
        web.stop()
        stack.processes.remove(web)


def post_async_orders(url: str, count: int) -> list[str]:
    with httpx.Client(base_url=url, timeout=30) as client:
        responses = [client.post("/api/orders/async", json=BODY) for _ in range(count)]
    assert [r.status_code for r in responses] == [202] * count
    return [r.json()["id"] for r in responses]


def signal_worker(web, sig: int) -> float:
    """Send `sig` to gunicorn's worker process (not the master); the seconds until it was gone."""
    [worker] = psutil.Process(web.pid).children()
    started = time.monotonic()
    os.kill(worker.pid, sig)
    worker.wait(timeout=20)
    return time.monotonic() - started


def test_a_sigtermed_web_worker_publishes_its_outbox_before_it_exits(lingering_web, stack, empty_queue):
    ids = post_async_orders(stack.env["WEB_URL"], 3)
    assert Order.objects.filter(pk__in=ids, enqueued_at__isnull=True).count() == 3  # in its outbox

    took = signal_worker(lingering_web, signal.SIGTERM)

    assert took < 15  # the drain's bound and a graceful stop, not the 30 s linger
    assert not Order.objects.filter(pk__in=ids, enqueued_at__isnull=True).exists()
    assert sorted(queued_order_ids(empty_queue)) == sorted(ids)
    log = lingering_web.log_path.read_text(errors="replace")
    assert '"outbox_held": 3' in log and '"outbox_unsent": 0' in log


def test_a_sigkilled_web_workers_orders_stay_null_and_the_sweeper_publishes_them(
    lingering_web, stack, empty_queue, settings
):
    ids = post_async_orders(stack.env["WEB_URL"], 3)

    signal_worker(lingering_web, signal.SIGKILL)

    assert Order.objects.filter(pk__in=ids, enqueued_at__isnull=True).count() == 3
    assert queued_order_ids(empty_queue) == []  # their ids died with the process
    settings.SWEEP_GRACE_SECONDS = 0.5
    time.sleep(0.6)
    result = sweep_stuck_orders()
    assert result.published == 3
    assert not Order.objects.filter(pk__in=ids, enqueued_at__isnull=True).exists()
    assert sorted(queued_order_ids(empty_queue)) == sorted(ids)
