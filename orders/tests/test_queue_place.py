"""An order's place in line while it waits, and an ETA from the last minute's paying rate."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from orders.models import Order, OrderStatus
from tests.factories import make_order


def queue_of(order: Order) -> dict | None:
    return APIClient().get(f"/api/orders/{order.id}").json()["queue"]


def paid_recently(count: int) -> None:
    for _ in range(count):
        order = make_order()
        Order.objects.filter(pk=order.pk).update(status=OrderStatus.PAID, paid_at=timezone.now())


@pytest.mark.django_db
def test_an_order_behind_a_backlog_counts_the_orders_ahead_and_its_eta_shrinks(products):
    ahead = [make_order() for _ in range(3)]
    mine = make_order()
    paid_recently(2)  # two paid in the last minute: 2/60 orders a second

    first = queue_of(mine)
    assert first == {"position": 3, "eta_seconds": round(4 / (2 / 60))}

    Order.objects.filter(pk=ahead[0].pk).update(status=OrderStatus.PAID, paid_at=timezone.now())
    second = queue_of(mine)
    assert second["position"] == 2
    assert second["eta_seconds"] < first["eta_seconds"]


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
def test_the_place_costs_two_counts_and_the_accept_none(products):
    mine = make_order()
    with CaptureQueriesContext(connection) as queries:
        queue_of(mine)
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert len(counts) == 2
    answer = APIClient().post(
        "/api/orders/async",
        {"email": "a@example.com", "items": [{"sku": "mug", "quantity": 1}]},
        format="json",
    )
    assert answer.status_code == 202 and "queue" not in answer.json()
