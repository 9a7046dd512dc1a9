"""Placing an order: what is written, by the accept's one statement (orders_accept)."""

from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.exceptions import ValidationError

from orders import checkout, transitions
from orders.api.serializers import (
    CheckoutInput,
    OrderOutput,
    order_body,
    placed_order_body,
    validated_checkout,
)
from orders.exceptions import InvalidOrder
from orders.models import Order, OrderEvent, OrderItem
from orders.selectors import order_with_history
from shop.exceptions import OutOfStock
from shop.models import Product

Line = checkout.Line


def _written() -> tuple[int, int, int]:
    return Order.objects.count(), OrderItem.objects.count(), OrderEvent.objects.count()


@pytest.mark.django_db
def test_an_order_is_written_whole_with_catalogue_prices_and_its_first_event(products):
    order = checkout.place_async_order(
        email="ann@example.com", lines=[Line("mug", 2), Line("sneakers", 1), Line("mug", 1)]
    )

    stored = Order.objects.get(pk=order.pk)
    assert (stored.status, stored.mode, stored.currency) == ("accepted", "async", settings.SHOP_CURRENCY)
    assert stored.total == Decimal("161.00")  # 3 × 24.00 + 89.00, the catalogue's prices
    assert stored.payment_key == f"order-{order.pk}"
    assert stored.attempts == 0 and stored.charge_id == ""
    assert stored.enqueued_at is None  # until SQS takes its job (orders.publishing stamps it)
    # Lines in the basket's order, repeated skus merged; nothing of unlimited stock reserved.
    assert list(stored.items.values_list("sku", "name", "quantity", "unit_price", "stock_reserved")) == [
        ("mug", "Mug", 3, Decimal("24.00"), False),
        ("sneakers", "Sneakers", 1, Decimal("89.00"), False),
    ]
    assert list(stored.events.values_list("from_status", "to_status", "detail")) == [
        ("", "accepted", "order placed (async checkout)")
    ]
    # What the caller holds (and the 202 shows) is what was written, without a read back.
    assert {f.attname: getattr(order, f.attname) for f in Order._meta.concrete_fields} == (
        Order.objects.values().get(pk=order.pk)
    )
    assert order_body(order) == order_body(order_with_history(order.pk))
    # The 202's body, written out by hand, is the serializer's to the character.
    assert placed_order_body(order) == order_body(order_with_history(order.pk))


@pytest.mark.django_db(transaction=True)  # outside a transaction, as a request runs it
@pytest.mark.parametrize("limited", [False, True], ids=["unlimited", "limited"])
def test_a_basket_is_read_reserved_and_written_in_one_statement(products, limited):
    if limited:  # the flash-sale product takes the same one round trip as any other
        Product.objects.filter(sku="hoodie").update(stock=5)
    with CaptureQueriesContext(connection) as queries:
        checkout.place_async_order(email="ann@example.com", lines=[Line("mug", 1), Line("hoodie", 2)])

    assert len(queries) == 1, [q["sql"] for q in queries.captured_queries]
    assert _written() == (1, 2, 1)
    assert Product.objects.get(sku="hoodie").reserved == (2 if limited else 0)


@pytest.mark.django_db(transaction=True)
def test_a_refusal_in_the_one_statement_rolls_back_the_whole_order(products):
    Product.objects.filter(sku="hoodie").update(stock=5)
    Product.objects.filter(sku="sneakers").update(stock=1)

    with CaptureQueriesContext(connection) as queries, pytest.raises(OutOfStock) as refused:
        checkout.place_async_order(
            email="ann@example.com", lines=[Line("hoodie", 2), Line("mug", 1), Line("sneakers", 3)]
        )

    assert len(queries) == 1  # the refusal carries the product's name and units left: no read after
    assert (refused.value.sku, refused.value.requested, refused.value.left) == ("sneakers", 3, 1)
    assert _written() == (0, 0, 0)
    assert Product.objects.get(sku="hoodie").reserved == 0  # reserved first in id order, rolled back


@pytest.mark.django_db
def test_a_basket_with_a_limited_product_reserves_its_stock(products):
    Product.objects.filter(sku="sneakers").update(stock=5)

    order = checkout.place_async_order(email="ann@example.com", lines=[Line("mug", 1), Line("sneakers", 2)])

    assert Product.objects.get(sku="sneakers").reserved == 2
    assert Product.objects.get(sku="mug").reserved == 0
    assert dict(order.items.values_list("sku", "stock_reserved")) == {"mug": False, "sneakers": True}
    assert _written() == (1, 2, 1)
    assert placed_order_body(order) == order_body(order_with_history(order.pk))


@pytest.mark.django_db
def test_a_sold_out_limited_product_is_refused_and_writes_nothing(products):
    Product.objects.filter(sku="sneakers").update(stock=1)

    with pytest.raises(OutOfStock):
        checkout.place_async_order(email="ann@example.com", lines=[Line("mug", 1), Line("sneakers", 2)])

    assert _written() == (0, 0, 0)
    assert Product.objects.get(sku="sneakers").reserved == 0


@pytest.mark.django_db
@pytest.mark.parametrize("sku", ["nope", "retired"])
def test_an_unknown_or_inactive_product_is_refused_at_its_line_and_writes_nothing(products, sku):
    with pytest.raises(InvalidOrder) as refused:
        checkout.place_async_order(email="ann@example.com", lines=[Line("mug", 1), Line(sku, 1)])

    assert refused.value.errors == {"items": [{}, {"sku": [f"Unknown or unavailable product {sku!r}."]}]}
    assert _written() == (0, 0, 0)


@pytest.mark.django_db
def test_repeated_lines_over_the_quantity_limit_are_refused_at_the_line_that_crosses_it(products):
    with pytest.raises(InvalidOrder) as refused:
        checkout.place_async_order(email="ann@example.com", lines=[Line("mug", 60), Line("mug", 41)])

    assert refused.value.errors["items"][0] == {}
    assert "At most 100 of 'mug'" in refused.value.errors["items"][1]["quantity"][0]
    assert _written() == (0, 0, 0)


@pytest.mark.django_db(transaction=True)  # outside a transaction, as a request runs it
def test_a_basket_it_cannot_place_is_refused_line_by_line_from_the_one_statements_answer(products):
    Product.objects.filter(sku="hoodie").update(stock=5)
    lines = [Line("mug", 60), Line("nope", 1), Line("mug", 41), Line("retired", 2), Line("hoodie", 1)]

    with CaptureQueriesContext(connection) as queries, pytest.raises(InvalidOrder) as refused:
        checkout.place_async_order(email="ann@example.com", lines=lines)

    assert len(queries) == 1, [q["sql"] for q in queries.captured_queries]  # no second transaction
    assert refused.value.errors == {
        "items": [
            {},
            {"sku": ["Unknown or unavailable product 'nope'."]},
            {"quantity": ["At most 100 of 'mug' per order (repeated lines add up)."]},
            {"sku": ["Unknown or unavailable product 'retired'."]},
            {},
        ]
    }
    assert _written() == (0, 0, 0)
    assert Product.objects.get(sku="hoodie").reserved == 0  # nothing placed, nothing reserved


@pytest.mark.django_db
def test_create_order_makes_an_order_through_the_same_statement(products, django_assert_num_queries):
    Product.objects.filter(sku="sneakers").update(stock=5)

    with django_assert_num_queries(3):  # the statement, under a savepoint in the test's transaction
        order = checkout.create_order(email="ann@example.com", lines=[Line("sneakers", 2)], mode="async")

    assert _written() == (1, 1, 1)
    assert Product.objects.get(sku="sneakers").reserved == 2
    with pytest.raises(InvalidOrder):
        checkout.create_order(email="ann@example.com", lines=[Line("sneakers", 101)], mode="async")
    assert _written() == (1, 1, 1)
    assert placed_order_body(order) == order_body(order_with_history(order.pk))


@pytest.mark.django_db
def test_a_sync_order_is_placed_the_same_way(products, monkeypatch):
    monkeypatch.setattr(
        checkout.charging, "charge_order", lambda order_id, timeout: checkout.charging.Outcome.SKIPPED
    )

    order, _ = checkout.place_sync_order(email="ann@example.com", lines=[Line("hoodie", 1)])

    assert (order.mode, order.total) == ("sync", Decimal("59.50"))
    assert [e.detail for e in order.events.all()] == ["order placed (sync checkout)"]
    assert Order.objects.get(pk=order.pk).enqueued_at is None  # the request charges it, not a worker


@pytest.mark.django_db
def test_the_shared_order_serializer_answers_as_a_fresh_one_does(products):
    order = checkout.place_async_order(email="ann@example.com", lines=[Line("mug", 1)])
    transitions.claim(order.pk, lease_seconds=60, detail="payment started")
    transitions.mark_paid(order.pk, token=1, charge_id="ch_secret", detail="charged ch_secret")
    paid = order_with_history(order.pk)

    assert order_body(paid) == OrderOutput(paid).data
    assert "ch_secret" not in str(order_body(paid))  # the charge id is withheld either way


@pytest.mark.parametrize(
    "body",
    [
        {
            "email": "ann@example.com",
            "items": [{"sku": "mug", "quantity": 2}, {"sku": "hoodie", "quantity": 1}],
        },
        {"email": "ann@example.com", "items": [{"sku": "mug", "quantity": "2"}]},
        {"email": "not-an-email", "items": []},
        {"items": [{"sku": "mug"}]},
        {"email": "ann@example.com", "items": [{"sku": "mug", "quantity": 1}] * 51},
        [],
        None,
    ],
)
def test_the_shared_checkout_form_validates_as_a_fresh_one_does(body):
    fresh = CheckoutInput(data=body)
    if fresh.is_valid():
        assert validated_checkout(body) == fresh.validated_data
    else:
        with pytest.raises(ValidationError) as refused:
            validated_checkout(body)
        assert refused.value.detail == fresh.errors
