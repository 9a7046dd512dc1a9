"""An order's place in line while it waits, and an ETA from the last minute's paying rate."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from orders import selectors
from orders.models import Order, OrderStatus
from tests.factories import make_order


@pytest.fixture(autouse=True)
def fresh_line(settings):
    settings.QUEUE_PLACE_CACHE_SECONDS = 0  # every read sees the line as the test just left it


def queue_of(order: Order) -> dict | None:
    return APIClient().get(f"/api/orders/{order.id}").json()["queue"]


def paid_recently(count: int, *, seconds_ago: float = 0) -> None:
    """`count` orders paid `seconds_ago` (the first payments the line's rate sees)."""
    for _ in range(count):
        order = make_order()
        paid_at = timezone.now() - timedelta(seconds=seconds_ago)
        Order.objects.filter(pk=order.pk).update(status=OrderStatus.PAID, paid_at=paid_at)


@pytest.mark.django_db
def test_an_order_behind_a_backlog_counts_the_orders_ahead_and_its_eta_shrinks(products):
    ahead = [make_order() for _ in range(3)]
    mine = make_order()
    paid_recently(2, seconds_ago=59)  # two paid in the 59 s since the first of the last minute

    first = queue_of(mine)
    assert first["position"] == 3
    assert first["eta_seconds"] == pytest.approx(4 / (2 / 59), abs=1)

    Order.objects.filter(pk=ahead[0].pk).update(status=OrderStatus.PAID, paid_at=timezone.now())
    second = queue_of(mine)
    assert second["position"] == 2
    assert second["eta_seconds"] < first["eta_seconds"]


@pytest.mark.django_db
def test_in_the_first_minute_of_payments_the_rate_counts_only_the_time_since_the_first(products):
    ahead = [make_order() for _ in range(9)]
    mine = make_order()
    paid_recently(1, seconds_ago=20)
    paid_recently(3)  # 4 payments in the 20 s since the first: 0.2 a second, not 4/60

    assert queue_of(mine) == {"position": len(ahead), "eta_seconds": pytest.approx(10 / 0.2, abs=1)}


@pytest.mark.django_db
def test_the_orders_being_charged_add_one_charge_to_the_wait(products):
    ahead = [make_order() for _ in range(6)]
    mine = make_order()
    for order in ahead[:4]:  # four charging: at 0.2 paid a second, a charge takes 4 ÷ 0.2 = 20 s
        Order.objects.filter(pk=order.pk).update(status=OrderStatus.PROCESSING)
    paid_recently(1, seconds_ago=20)
    paid_recently(3)

    assert queue_of(mine) == {"position": 2, "eta_seconds": pytest.approx((2 + 4) / 0.2, abs=1)}


@pytest.mark.django_db
def test_a_burst_of_payments_is_measured_over_at_least_the_minimum_span(products):
    mine = make_order()
    paid_recently(5)  # five at the same instant: over 5 s, 1 a second, not an infinite rate

    assert queue_of(mine) == {
        "position": 0,
        "eta_seconds": round(1 / (5 / selectors.PAYING_RATE_MIN_SPAN.total_seconds())),
    }


@pytest.mark.django_db
def test_orders_placed_after_this_one_are_not_ahead_of_it(products):
    mine = make_order()
    make_order()
    assert queue_of(mine)["position"] == 0


@pytest.mark.django_db
def test_without_a_payment_in_the_last_minute_the_eta_is_unknown_not_invented(products):
    mine = make_order()
    old = make_order()
    Order.objects.filter(pk=old.pk).update(
        status=OrderStatus.PAID, paid_at=timezone.now() - timedelta(minutes=5)
    )

    assert queue_of(mine) == {"position": 0, "eta_seconds": None}


@pytest.mark.django_db
def test_a_final_order_has_no_place_in_line(products):
    order = make_order()
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.PAID, paid_at=timezone.now())

    assert queue_of(order) is None


@pytest.mark.django_db
def test_a_process_reads_the_line_once_per_snapshot_and_the_accept_never(products, settings):
    settings.QUEUE_PLACE_CACHE_SECONDS = 60
    selectors._snapshot = (0.0, [], 0.0, 0)
    first, second = make_order(), make_order()
    with CaptureQueriesContext(connection) as queries:
        assert queue_of(second)["position"] == 1
        assert queue_of(first)["position"] == 0
    reads = [q["sql"] for q in queries.captured_queries]
    line_reads = [sql for sql in reads if "ORDER BY" in sql and "'accepted'" in sql and "LIMIT" not in sql]
    assert len(line_reads) == 1, reads  # the second place came from the snapshot
    answer = APIClient().post(
        "/api/orders/async",
        {"email": "a@example.com", "items": [{"sku": "mug", "quantity": 1}]},
        format="json",
    )
    assert answer.status_code == 202 and "queue" not in answer.json()
