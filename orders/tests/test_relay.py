"""The web only commits; the relay publishes the accepted orders' jobs from the orders table.

An order is null (`enqueued_at`) until SQS takes its job. A relay pass locks the null orders it
takes (SKIP LOCKED) until their jobs are out and stamped, so passes never share an order, and a
pass that dies leaves its orders null for the next one (orders/relay.py).
"""

import io
import signal
import threading
import time

import httpx
import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from observability import heartbeat
from orders import relay
from orders.models import Order
from orders.relay import relay_once, relay_until_empty
from tests.factories import make_order
from tests.fixtures import database_url

from .test_sweeper import queued_order_ids

BODY = {"email": "buyer@example.com", "items": [{"sku": "mug", "quantity": 1}]}


def place(count: int) -> list[str]:
    client = APIClient()
    responses = [client.post("/api/orders/async", BODY, format="json") for _ in range(count)]
    assert [r.status_code for r in responses] == [202] * count
    return [r.json()["id"] for r in responses]


@pytest.mark.django_db(transaction=True)
def test_an_async_checkout_publishes_nothing_itself_and_the_relay_publishes_its_job(products, jobs):
    [order_id] = place(1)

    assert jobs.published == []  # the web's work ended at the commit
    assert Order.objects.get(pk=order_id).enqueued_at is None
    before = timezone.now()

    assert relay_once().taken == 1

    assert [str(i) for i in jobs.published] == [order_id]
    assert Order.objects.get(pk=order_id).enqueued_at >= before  # stamped once SQS took it
    assert relay_once().taken == 0  # published once, not on every pass


@pytest.mark.django_db(transaction=True)
def test_relay_orders_once_publishes_what_waits_and_exits(products, jobs, settings):
    settings.RELAY_BATCH_SIZE = 50
    ids = place(60)  # more than one pass
    out = io.StringIO()

    call_command("relay_orders", "--once", stdout=out)

    assert sorted(str(i) for i in jobs.published) == sorted(ids)
    assert out.getvalue().strip() == "relay: published the jobs of 60 orders"


@pytest.mark.django_db(transaction=True)
def test_a_pass_sends_its_orders_in_batches_of_ten_the_oldest_first(products, jobs):
    ids = place(25)
    requests: list[list] = []
    record = jobs.publish
    jobs.publish = lambda batch: requests.append(list(batch)) or record(batch)

    assert relay_once(limit=25).taken == 25

    assert [len(batch) for batch in requests] == [10, 10, 5]
    assert [str(i) for batch in requests for i in batch] == ids  # in the order they were placed


@pytest.mark.django_db(transaction=True)
def test_a_refused_job_stays_null_and_a_later_pass_publishes_it(products, jobs):
    jobs.accept = lambda order_id: False
    [order_id] = place(1)

    result = relay_once()

    assert (result.taken, result.refused) == (1, 1)
    assert Order.objects.get(pk=order_id).enqueued_at is None
    jobs.accept = lambda order_id: True
    assert relay_once().refused == 0
    assert Order.objects.get(pk=order_id).enqueued_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_batch_refused_whole_ends_the_pass_without_a_request_per_batch(products, jobs):
    place(25)
    requests = []

    def unreachable(batch):
        requests.append(batch)
        return list(batch)  # SQS down: every entry refused

    jobs.publish = unreachable

    result = relay_once(limit=25)

    assert (result.taken, result.refused, len(requests)) == (25, 25, 1)
    assert Order.objects.filter(enqueued_at__isnull=True).count() == 25


@pytest.mark.django_db(transaction=True)
def test_a_pass_that_dies_mid_publish_leaves_its_orders_null_for_the_next(products, jobs):
    ids = place(3)
    record = jobs.publish

    def dies(batch):
        record(batch)  # SQS took the jobs ...
        raise RuntimeError("killed before the stamp")  # ... and the relay died before its commit

    jobs.publish = dies
    with pytest.raises(RuntimeError):
        relay_once()

    assert Order.objects.filter(pk__in=ids, enqueued_at__isnull=True).count() == 3
    jobs.publish = record
    assert relay_until_empty() == 3  # published again: a duplicate job each, which the claim turns away
    assert not Order.objects.filter(pk__in=ids, enqueued_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_two_relays_never_take_the_same_order(products, jobs):
    first_ids = place(5)
    inside, release = threading.Event(), threading.Event()
    record = jobs.publish

    def slow(batch):
        inside.set()
        release.wait(10)  # SQS taking its time, the first pass's rows locked meanwhile
        return record(batch)

    jobs.publish = slow
    first = threading.Thread(target=relay_once)
    first.start()
    assert inside.wait(10)
    jobs.publish = record
    second_ids = place(2)  # placed while the first pass holds its five

    assert relay_once().taken == 2  # the second relay skips the locked five

    release.set()
    first.join(10)
    published = [str(i) for i in jobs.published]
    assert sorted(published) == sorted(first_ids + second_ids)  # each exactly once


@pytest.mark.django_db(transaction=True)
def test_while_sqs_refuses_the_relay_backs_off_instead_of_retrying_every_interval(products, jobs, settings):
    settings.RELAY_THREADS = 1
    settings.RELAY_INTERVAL_SECONDS = 0.05
    settings.RELAY_BACKOFF_MAX_SECONDS = 5
    attempts = []
    jobs.publish = lambda batch: attempts.append(batch) or list(batch)
    place(1)
    stop = threading.Event()
    runner = threading.Thread(target=relay.run, args=(stop,))
    runner.start()
    time.sleep(1.2)  # 24 intervals; backing off 0.05, 0.1, 0.2, 0.4, 0.8 s it tries 5 times at most
    stop.set()
    runner.join(10)

    assert 2 <= len(attempts) <= 5
    assert not runner.is_alive()


@pytest.mark.django_db(transaction=True)
def test_a_thread_stuck_in_a_pass_stops_the_heartbeat_until_it_finishes(
    products, jobs, settings, monkeypatch, tmp_path
):
    monkeypatch.setenv("HEARTBEAT_DIR", str(tmp_path))
    settings.RELAY_THREADS = 1
    settings.RELAY_STALL_SECONDS = 1.5
    release, blocked = threading.Event(), threading.Event()

    def hang(batch):
        blocked.set()
        release.wait(30)  # a call that does not return: a lock never released, a hung connection
        return list(batch)

    jobs.publish = hang
    place(1)
    stop = threading.Event()
    runner = threading.Thread(target=relay.run, args=(stop,))
    runner.start()
    try:
        assert blocked.wait(10)
        began = time.monotonic()
        time.sleep(settings.RELAY_STALL_SECONDS + 2.5)  # the thread's last pass ends ~4 s ago
        stuck_for = time.monotonic() - began
        age = heartbeat.age("relay")
        assert (
            age is not None and age > stuck_for - settings.RELAY_STALL_SECONDS - 1.2
        )  # no beat since stalled
        release.set()  # the call returns: the pass ends, the thread passes again, the relay beats
        time.sleep(2.2)
        assert heartbeat.age("relay") < 1.5
    finally:
        release.set()
        stop.set()
        runner.join(10)
    assert not runner.is_alive()


def test_only_threads_past_the_stall_bound_count_as_stalled(settings):
    settings.RELAY_STALL_SECONDS = 30
    assert relay.stalled_threads({"relay-0": 100.0, "relay-1": 75.0}, now=100.0) == []
    assert relay.stalled_threads({"relay-0": 100.0, "relay-1": 69.0}, now=100.0) == ["relay-1"]


# --- the relay process: `python -m config.processes relay` on the stack's SQS -----------------------


@pytest.fixture
def relay_process(stack, transactional_db, empty_queue, request):
    process = stack.start_relay(
        f"relay-{request.node.name[:40]}",
        threads=2,
        DATABASE_URL=database_url(),
        LOG_FORMAT="json",
        RELAY_INTERVAL_SECONDS="0.05",
    )
    yield process
    process.stop()
    if process in stack.processes:
        stack.processes.remove(process)


def wait_until_published(ids: list, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while Order.objects.filter(pk__in=ids, enqueued_at__isnull=True).exists():
        assert time.monotonic() < deadline, "the relay did not publish them"
        time.sleep(0.1)


def test_the_relay_process_publishes_every_order_placed_to_sqs_once(relay_process, products, empty_queue):
    orders = [make_order(product=products["mug"]) for _ in range(40)]
    ids = [str(order.id) for order in orders]

    wait_until_published(ids)

    assert sorted(queued_order_ids(empty_queue)) == sorted(ids)


def test_a_sigkilled_relay_loses_nothing_and_the_next_relay_publishes_the_rest(
    stack, relay_process, products, empty_queue
):
    first = [str(make_order(product=products["mug"]).id) for _ in range(10)]
    wait_until_published(first)
    relay_process.kill(signal.SIGKILL)
    relay_process.popen.wait(10)
    later = [str(make_order(product=products["mug"]).id) for _ in range(10)]
    time.sleep(0.5)
    assert Order.objects.filter(pk__in=later, enqueued_at__isnull=True).count() == 10  # nobody relays

    successor = stack.start_relay("relay-successor", threads=1, DATABASE_URL=database_url())
    try:
        wait_until_published(later)
    finally:
        successor.stop()
        stack.processes.remove(successor)
    assert sorted(queued_order_ids(empty_queue)) == sorted(first + later)


def test_a_sigtermed_relay_finishes_its_pass_and_exits(relay_process):
    deadline = time.monotonic() + 30
    while "relay: 2 threads" not in relay_process.log_path.read_text(errors="replace"):  # running
        assert time.monotonic() < deadline and relay_process.alive(), "the relay did not start"
        time.sleep(0.1)
    started = time.monotonic()
    relay_process.kill(signal.SIGTERM)

    assert relay_process.popen.wait(15) == 0
    assert time.monotonic() - started < 10  # its interval and a pass, not the 15 s of a hung stop


def test_the_web_behind_a_relay_answers_and_its_orders_reach_sqs(stack, relay_process, products, empty_queue):
    web = stack.start_web(None, name="web-relay", workers=1, threads=4, DATABASE_URL=database_url())
    try:
        with httpx.Client(base_url=stack.env["WEB_URL"], timeout=30) as client:
            responses = [client.post("/api/orders/async", json=BODY) for _ in range(5)]
    finally:
        web.stop()
        stack.processes.remove(web)
    ids = [r.json()["id"] for r in responses]
    assert [r.status_code for r in responses] == [202] * 5

    wait_until_published(ids)

    assert sorted(queued_order_ids(empty_queue)) == sorted(ids)
