"""Migrations run before the services roll (`python -m deploy`: migrate, then the new image), so for
minutes the previous image's processes run against the new schema. What they call must still work.
"""

import json

import pytest
from django.db import connection
from django.utils import timezone

from orders import checkout
from orders.models import CheckoutMode, Order, OrderStatus
from shop.models import customer_key

# The previous image's accept (git bf5036d, orders/checkout.py: ACCEPT_SQL): six arguments.
PREVIOUS_ACCEPT_SQL = (
    "SELECT * FROM orders_accept(%(order)s::jsonb, %(skus)s::text[], %(quantities)s::integer[],"
    " %(now)s, %(detail)s, %(customer)s)"
)


@pytest.mark.django_db
def test_the_previous_images_accept_still_places_an_order_after_migrating(products):
    email = "rolling@example.com"
    order = checkout._new_order(email=email, mode=CheckoutMode.ASYNC, enqueued_at=None)
    params = {
        "order": json.dumps(checkout._order_row(order)),
        "skus": ["mug", "hoodie"],
        "quantities": [2, 1],
        "now": timezone.now(),
        "detail": "order placed (async checkout)",
        "customer": customer_key(email),
    }
    with connection.cursor() as cursor:
        cursor.execute(PREVIOUS_ACCEPT_SQL, params)
        rows = cursor.fetchall()

    assert [row[1] for row in rows] == ["mug", "hoodie"]
    placed = Order.objects.get(pk=order.id)
    assert placed.status == OrderStatus.ACCEPTED
    assert placed.total == products["mug"].price * 2 + products["hoodie"].price
    assert sorted(placed.items.values_list("sku", "quantity")) == [("hoodie", 1), ("mug", 2)]
    assert list(placed.events.values_list("to_status", flat=True)) == [OrderStatus.ACCEPTED]
