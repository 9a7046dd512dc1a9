"""Workers hold a database connection only while they use it: more threads than connections still pay.

PostgreSQL only: the worker logs in as a role with a CONNECTION LIMIT (superusers ignore limits),
so "too many connections" is the server's own verdict, not a count of ours.
"""

import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection

from orders import checkout
from orders.models import Order, OrderStatus
from tests.fixtures import database_url

ROLE_LIMIT = 8
THREADS = 40  # five times what the role may open


@pytest.fixture
def limited_database_url(transactional_db) -> str:
    """The test database's URL for a fresh role that may open ROLE_LIMIT connections."""
    role = f"flashsale_limited_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT {ROLE_LIMIT}")
        cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
        cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}")
    parts = urlsplit(database_url())
    yield urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port or 5432}"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [role])
        cursor.execute(f"DROP OWNED BY {role}")
        cursor.execute(f"DROP ROLE {role}")


def place(count: int) -> list[Order]:
    lines = [checkout.Line("mug", 1)]
    return [checkout.place_async_order(email=f"b{i}@example.com", lines=lines) for i in range(count)]


def wait_settled(orders: list[Order], timeout: float = 60) -> dict[str, int]:
    ids = [o.id for o in orders]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statuses = list(Order.objects.filter(pk__in=ids).values_list("status", flat=True))
        if all(s in (OrderStatus.PAID, OrderStatus.FAILED) for s in statuses):
            break
        time.sleep(0.2)
    return {s: statuses.count(s) for s in set(statuses)}


def test_a_worker_with_five_times_more_threads_than_connections_pays_every_order_once(
    limited_database_url, start_worker, provider, products
):
    provider.configure(latency_seconds=0.5, concurrency=0)
    worker = start_worker(
        "narrow", concurrency=THREADS, DATABASE_URL=limited_database_url,
        DB_POOL_MAX_SIZE="4", DATABASE_CONNECTION_BUDGET=str(ROLE_LIMIT - 2),
    )  # fmt: skip

    orders = place(200)

    assert wait_settled(orders) == {OrderStatus.PAID: 200}
    per_key = provider.charges_per_key()
    assert sorted(per_key[o.payment_key] for o in orders) == [1] * 200
    log = worker.log_path.read_text()
    assert "too many connections" not in log and "Traceback" not in log
    assert provider.stats()["max_in_flight"] > ROLE_LIMIT  # the threads really charged side by side


def test_without_the_pool_the_same_worker_is_refused_at_start_up(limited_database_url, start_worker):
    worker = start_worker(
        "unpooled", concurrency=THREADS, DATABASE_URL=limited_database_url,
        DB_POOL_MAX_SIZE="0", DATABASE_CONNECTION_BUDGET=str(ROLE_LIMIT - 2),
    )  # fmt: skip

    assert worker.popen.wait(30) != 0
    assert "DATABASE_CONNECTION_BUDGET" in worker.log_path.read_text()
