"""Fixtures shared by every app's tests: catalogue, provider sandbox, SQS queue, a real worker."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import TypeVar

import pytest
from django.conf import settings
from django.db import connection, connections

from devstack.stack import Process, Stack
from orders.jobs import JobsDepth
from orders.models import Order
from orders.relay import relay_until_empty
from orders.relay import run as run_relay
from queues.sqs import ensure_queues, sqs_client
from sandbox.client import SandboxClient
from shop.models import Product
from tests.factories import ProductFactory

T = TypeVar("T")


class Provider(SandboxClient):
    """The payment sandbox as tests see it, with short defaults."""

    def charges_for(self, order: Order) -> list[dict]:
        return [c for c in self.ledger() if c["idempotency_key"] == order.payment_key]


@pytest.fixture
def provider(stack: Stack) -> Iterator[Provider]:
    sandbox = Provider(settings.PAYMENT_PROVIDER_URL, defaults={"latency_seconds": 0.2})
    sandbox.reset()
    yield sandbox
    sandbox.reset()


@pytest.fixture
def products(db) -> dict[str, Product]:
    rows = [
        ProductFactory(sku="sneakers", name="Sneakers", price=Decimal("89.00")),
        ProductFactory(sku="mug", name="Mug", price=Decimal("24.00")),
        ProductFactory(sku="hoodie", name="Hoodie", price=Decimal("59.50")),
        ProductFactory(sku="retired", name="Retired", price=Decimal("10.00"), active=False),
    ]
    return {p.sku: p for p in rows}


@pytest.fixture(scope="session")
def payment_queue(stack: Stack) -> str:
    return ensure_queues()["queue"]


@pytest.fixture
def empty_queue(payment_queue: str) -> str:
    """Drop jobs left by earlier tests (SQS allows one PurgeQueue a minute, so receive and delete)."""
    client = sqs_client()
    while messages := client.receive_message(QueueUrl=payment_queue, MaxNumberOfMessages=10).get("Messages"):
        client.delete_message_batch(
            QueueUrl=payment_queue,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
    return payment_queue


def database_url() -> str:
    """The URL of the test database Django just created, for worker subprocesses."""
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


# Test workers long-poll briefly: a poll still open at SQS when its worker stops takes the next
# message with it (as on AWS), and that message then waits out the visibility timeout.
WORKER_POLL_SECONDS = 1


@pytest.fixture
def relay(transactional_db) -> Iterator[None]:
    """The outbox's relay (orders/relay.py) in this process's threads, on the test database: it
    publishes the jobs of the orders a test accepts, as the relay process beside every web does."""
    stop = threading.Event()
    runner = threading.Thread(target=run_relay, args=(stop,), name="relay", daemon=True)
    runner.start()
    yield
    stop.set()
    runner.join(timeout=15)
    assert not runner.is_alive(), "the relay did not stop"


@pytest.fixture
def start_worker(stack: Stack, relay, empty_queue) -> Iterator[Callable[..., Process]]:
    """Start real `celery worker` processes on the test database, with the relay publishing the
    accepted orders' jobs to them; stopped after the test."""
    started: list[Process] = []

    def start(name: str = "worker", concurrency: int = 4, pool: str = "threads", **env: str) -> Process:
        env = {
            "DATABASE_URL": database_url(),
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "SQS_WAIT_TIME_SECONDS": str(WORKER_POLL_SECONDS),
            **env,
        }
        process = stack.start_worker(f"{name}-{len(started)}", concurrency=concurrency, pool=pool, **env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
        stack.processes.remove(process)
    if started:
        time.sleep(WORKER_POLL_SECONDS + 0.5)  # let their last polls at SQS run out


@pytest.fixture
def worker(start_worker) -> Process:
    return start_worker()


def wait_for_status(order: Order, *statuses: str, timeout: float = 30) -> Order:
    deadline = time.monotonic() + timeout
    while True:
        order.refresh_from_db()
        if order.status in statuses:
            return order
        if time.monotonic() > deadline:
            raise AssertionError(f"order {order.id} still {order.status!r} after {timeout}s, not {statuses}")
        time.sleep(0.05)


def at_once(action: Callable[[], T], count: int) -> list[T]:
    """Run `action` in `count` threads released together; each thread closes its own DB connection."""
    barrier = threading.Barrier(count)

    def run() -> T:
        try:
            barrier.wait()
            return action()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: run(), range(count)))


class RecordingJobs:
    """The payment-jobs port without a broker: records what is published; `accept` decides."""

    def __init__(self) -> None:
        self.published: list[uuid.UUID] = []
        self.accept: Callable[[uuid.UUID], bool] = lambda order_id: True

    def publish(self, order_ids) -> list[uuid.UUID]:
        refused = [order_id for order_id in order_ids if not self.accept(order_id)]
        self.published += [order_id for order_id in order_ids if order_id not in refused]
        return refused

    def prepare(self) -> None:
        """Nothing to build: the recorder has no broker."""

    def waiting(self) -> int:
        return len(self.published)

    def depth(self) -> JobsDepth:
        return JobsDepth(waiting=len(self.published), in_flight=0, dead_lettered=0)


@pytest.fixture
def jobs(monkeypatch) -> RecordingJobs:
    """Swap the payment-jobs port for a recorder, for tests about the order domain alone."""
    recorder = RecordingJobs()
    monkeypatch.setattr("orders.jobs.payment_jobs", lambda: recorder)
    return recorder


@pytest.fixture
def published_jobs(jobs: RecordingJobs) -> Callable[[], list]:
    """Record payment jobs instead of publishing them; call it to relay what waits (the relay's
    passes, in the test's thread: orders.relay) and get every job published so far."""

    def settled() -> list:
        relay_until_empty()
        return list(jobs.published)

    return settled


@pytest.fixture(autouse=True)
def _unit_tests_publish_to_a_recorder(request: pytest.FixtureRequest) -> None:
    """A unit test has no broker: its payment jobs go to the recorder (the `jobs` fixture)."""
    if request.node.get_closest_marker("unit"):
        request.getfixturevalue("jobs")


@pytest.fixture
def inside_a_rate_window() -> None:
    """Start well inside a minute: per-minute limits count in fixed windows, and a test that straddled
    a window's edge would see two budgets instead of one."""
    if (into := time.time() % 60) > 45:
        time.sleep(60 - into + 0.5)
