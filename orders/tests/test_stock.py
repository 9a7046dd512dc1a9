"""Limited stock through an order's life: reserved at checkout, sold when paid, released when failed.

The witness is always the product row and the orders table, read back from the database.
"""

import json

import pytest
from rest_framework.test import APIClient

from orders import checkout, transitions
from orders.exceptions import TransitionConflict
from orders.models import Order, OrderEvent, OrderItem, OrderStatus
from shop import stock
from shop.exceptions import OutOfStock
from shop.models import Product
from tests.factories import ProductFactory
from tests.fixtures import at_once


@pytest.fixture
def sneakers(products) -> Product:
    """A flash-sale product: 10 units."""
    Product.objects.filter(sku="sneakers").update(stock=10)
    return Product.objects.get(sku="sneakers")


def post(path: str, items: list[dict], key: str | None = None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    body = {"email": "buyer@example.com", "items": items}
    return APIClient().post(path, data=json.dumps(body), content_type="application/json", **headers)


def counters(sku: str = "sneakers") -> tuple[int | None, int, int]:
    product = Product.objects.get(sku=sku)
    return product.stock, product.reserved, product.sold


def buy(sku: str = "sneakers", quantity: int = 1, *more: checkout.Line) -> Order:
    return checkout.place_async_order(email="buyer@example.com", lines=[checkout.Line(sku, quantity), *more])


def claimed(order: Order) -> Order:
    assert transitions.claim(order.id, lease_seconds=60)
    return order


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/orders/async", "/api/orders/sync"])
def test_asking_for_more_than_is_left_is_a_409_naming_the_sku_and_creates_and_charges_nothing(
    path, sneakers, monkeypatch
):
    charges: list = []
    monkeypatch.setattr("payments.gateway.charge", lambda *a, **kw: charges.append(a))
    buy(quantity=8)

    response = post(path, [{"sku": "mug", "quantity": 1}, {"sku": "sneakers", "quantity": 3}])

    assert response.status_code == 409
    assert response.json() == {
        "detail": "Only 2 of Sneakers left; the order asked for 3.",
        "code": "out_of_stock",
        "sku": "sneakers",
        "left": 2,
        "requested": 3,
    }
    assert Order.objects.count() == 1  # the first buyer's only
    assert OrderItem.objects.count() == OrderEvent.objects.count() == 1
    assert counters() == (10, 8, 0)
    assert charges == []


@pytest.mark.django_db
def test_a_sold_out_product_is_a_409_with_nothing_left(sneakers):
    buy(quantity=10)

    response = post("/api/orders/async", [{"sku": "sneakers", "quantity": 1}])

    assert response.status_code == 409
    assert (response.json()["left"], response.json()["detail"]) == (0, "Sneakers is sold out.")


@pytest.mark.django_db
def test_a_409_for_stock_is_replayed_for_the_same_idempotency_key_and_still_creates_nothing(sneakers):
    buy(quantity=10)

    first = post("/api/orders/async", [{"sku": "sneakers", "quantity": 1}], key="k-1")
    again = post("/api/orders/async", [{"sku": "sneakers", "quantity": 1}], key="k-1")

    assert first.status_code == again.status_code == 409
    assert again["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1


@pytest.mark.django_db
def test_checkout_reserves_limited_stock_and_leaves_unlimited_products_alone(sneakers):
    order = buy("sneakers", 3, checkout.Line("mug", 2))

    assert counters() == (10, 3, 0)
    assert counters("mug") == (None, 0, 0)
    assert dict(order.items.values_list("sku", "stock_reserved")) == {"sneakers": True, "mug": False}


@pytest.mark.django_db
def test_a_basket_whose_second_product_is_short_reserves_nothing_for_the_first(sneakers):
    ProductFactory(sku="cap", stock=1)

    with pytest.raises(OutOfStock):
        buy("sneakers", 2, checkout.Line("cap", 2))

    assert counters() == (10, 0, 0)
    assert counters("cap") == (1, 0, 0)
    assert Order.objects.count() == 0


@pytest.mark.django_db
def test_a_paid_order_turns_its_reservation_into_a_sale_and_says_so_in_its_history(sneakers):
    order = claimed(buy(quantity=2))

    transitions.mark_paid(order.id, token=1, charge_id="ch_1", detail="charged ch_1")

    assert counters() == (10, 0, 2)
    assert order.events.last().detail == "charged ch_1; sold 2 × sneakers"


@pytest.mark.django_db
def test_two_limited_products_are_paid_and_settled_in_one_statement(sneakers, django_assert_num_queries):
    cap = ProductFactory(sku="cap", stock=5)
    order = claimed(buy("cap", 1, checkout.Line("mug", 1), checkout.Line("sneakers", 2)))
    copy = Order.objects.get(pk=order.id)  # the charger's copy: the metrics read nothing more

    with django_assert_num_queries(1):
        transitions.mark_paid(order.id, token=1, charge_id="ch_1", order=copy)

    assert counters() == (10, 0, 2)
    assert counters("cap") == (5, 0, 1)
    assert counters("mug") == (None, 0, 0)
    paid = Order.objects.get(pk=order.id)
    assert (paid.status, paid.charge_id, paid.lease_expires_at) == ("paid", "ch_1", None)
    event = order.events.last()
    assert (event.from_status, event.to_status) == ("processing", "paid")
    assert event.detail == "charged (ch_1); sold 1 × cap, 2 × sneakers"  # the lines in their order
    assert event.at == paid.paid_at == paid.updated_at
    assert cap.pk > sneakers.pk  # the lines' order is not the products' id order, which settles them


@pytest.mark.django_db
def test_a_paid_orders_history_is_cut_to_255_characters_with_its_units(sneakers):
    order = claimed(buy(quantity=1))

    transitions.mark_paid(order.id, token=1, charge_id="ch_1", detail="x" * 250)

    assert order.events.last().detail == "x" * 250 + "; sol"


@pytest.mark.django_db
def test_a_payment_with_a_stale_token_settles_no_stock_and_writes_nothing(sneakers):
    order = claimed(buy(quantity=2))
    events = order.events.count()

    with pytest.raises(TransitionConflict, match="is not 'processing' any more"):
        transitions.mark_paid(order.id, token=2, charge_id="ch_stale")

    assert counters() == (10, 2, 0)
    assert (Order.objects.get(pk=order.id).status, order.events.count()) == ("processing", events)


@pytest.mark.django_db
@pytest.mark.parametrize("reason", ["card declined", "payment provider unavailable after 5 attempts"])
def test_a_failed_order_puts_its_units_back_on_sale_and_says_so_in_its_history(sneakers, reason):
    order = claimed(buy(quantity=2))

    transitions.mark_failed(order.id, token=1, reason=reason)

    assert counters() == (10, 0, 0)
    assert order.events.last().detail == f"{reason}; released 2 × sneakers to stock"
    assert Product.objects.get(sku="sneakers").left == 10


@pytest.mark.django_db
def test_a_retry_back_to_accepted_keeps_the_units_reserved(sneakers):
    order = claimed(buy(quantity=2))

    transitions.release(order.id, token=1, detail="provider timed out; will retry")

    assert counters() == (10, 2, 0)


@pytest.mark.django_db
def test_failing_an_order_twice_releases_its_units_once(sneakers):
    order = claimed(buy(quantity=4))
    transitions.mark_failed(order.id, token=1, reason="card declined")

    with pytest.raises(TransitionConflict):
        transitions.mark_failed(order.id, token=1, reason="card declined")
    with pytest.raises(TransitionConflict):
        transitions.mark_paid(order.id, token=1, charge_id="ch_late")

    assert counters() == (10, 0, 0)
    assert Order.objects.get(pk=order.id).status == OrderStatus.FAILED


@pytest.mark.django_db
def test_units_held_when_staff_make_the_product_unlimited_are_still_settled(sneakers):
    paid, failed = claimed(buy(quantity=2)), claimed(buy(quantity=3))
    stock.set_stock(sneakers.pk, None)

    transitions.mark_paid(paid.id, token=1, charge_id="ch_1")
    transitions.mark_failed(failed.id, token=1, reason="card declined")

    assert counters() == (None, 0, 2)


@pytest.mark.django_db(transaction=True)
def test_concurrent_buyers_never_oversell(sneakers):
    def attempt() -> str:
        try:
            buy(quantity=1)
        except OutOfStock:
            return "409"
        return "202"

    outcomes = at_once(attempt, 16)

    assert outcomes.count("202") == 10
    assert outcomes.count("409") == 6
    assert counters() == (10, 10, 0)
    assert OrderItem.objects.filter(sku="sneakers").count() == 10


@pytest.mark.django_db(transaction=True)
def test_racing_final_transitions_settle_the_stock_once(sneakers):
    order = claimed(buy(quantity=3))

    turns = iter(range(8))

    def fail_or_pay() -> str:
        try:
            if next(turns) % 2:
                transitions.mark_failed(order.id, token=1, reason="card declined")
            else:
                transitions.mark_paid(order.id, token=1, charge_id="ch_1")
        except TransitionConflict:
            return "lost"
        return "won"

    outcomes = at_once(fail_or_pay, 8)

    assert outcomes.count("won") == 1
    _, reserved, sold = counters()
    assert (reserved, sold) in {(0, 3), (0, 0)}  # sold once, or released once
    assert OrderEvent.objects.filter(order=order, to_status__in=["paid", "failed"]).count() == 1


@pytest.mark.django_db
def test_the_catalogue_api_shows_what_is_left_and_what_is_sold_out(sneakers):
    ProductFactory(sku="cap", name="Cap", stock=2)
    buy("cap", 2)
    buy(quantity=3)

    results = {p["sku"]: p for p in APIClient().get("/api/products").json()["results"]}

    assert (results["sneakers"]["left"], results["sneakers"]["sold_out"]) == (7, False)
    assert (results["cap"]["left"], results["cap"]["sold_out"]) == (0, True)
    assert (results["mug"]["left"], results["mug"]["sold_out"]) == (None, False)
