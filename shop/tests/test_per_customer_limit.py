"""A per-customer limit: counted with the stock in one write, so racing checkouts cannot pass it."""

import pytest
from rest_framework.test import APIClient

from orders import checkout, operations, transitions
from orders.models import Order
from shop.exceptions import PerCustomerLimit
from shop.models import CustomerAllowance, Product
from tests.fixtures import at_once

Line = checkout.Line


def buy(email: str = "ann@example.com", quantity: int = 1, sku: str = "sneakers") -> Order:
    return checkout.place_async_order(email=email, lines=[Line(sku, quantity)])


def post(email: str, quantity: int = 1) -> int:
    body = {"email": email, "items": [{"sku": "sneakers", "quantity": quantity}]}
    return APIClient().post("/api/orders/async", body, format="json")


def held(email: str = "ann@example.com") -> int:
    allowance = CustomerAllowance.objects.filter(product__sku="sneakers", customer=email).first()
    return allowance.units if allowance else 0


@pytest.fixture
def two_each(products) -> Product:
    Product.objects.filter(sku="sneakers").update(stock=100, per_customer_limit=2)
    return Product.objects.get(sku="sneakers")


@pytest.mark.django_db(transaction=True)
def test_twenty_racing_checkouts_of_one_customer_get_exactly_the_limit(two_each):
    answers = at_once(lambda: post("ann@example.com"), 20)

    codes = sorted(a.status_code for a in answers)
    assert codes == [202] * 2 + [409] * 18
    refusals = [a.json() for a in answers if a.status_code == 409]
    assert {r["code"] for r in refusals} == {"per_customer_limit"}
    assert {(r["sku"], r["limit"], r["already"]) for r in refusals} == {("sneakers", 2, 2)}
    assert Order.objects.count() == 2 and held() == 2
    assert Product.objects.get(sku="sneakers").reserved == 2  # a refusal reserved nothing
    assert post("bob@example.com").status_code == 202  # another customer still buys


@pytest.mark.django_db
def test_the_limit_counts_the_email_as_typed_in_any_case(two_each):
    buy("Ann@Example.com ")

    with pytest.raises(PerCustomerLimit) as refused:
        buy("ann@example.com", quantity=2)

    assert (refused.value.limit, refused.value.already, refused.value.requested) == (2, 1, 2)
    assert held() == 1


@pytest.mark.django_db
def test_one_order_over_the_limit_is_refused_whole(two_each):
    with pytest.raises(PerCustomerLimit) as refused:
        checkout.place_async_order(email="ann@example.com", lines=[Line("mug", 1), Line("sneakers", 3)])

    assert refused.value.already == 0
    assert Order.objects.count() == 0 and held() == 0


def fail(order: Order) -> None:
    claimed = transitions.claim(order.id, lease_seconds=60)
    assert claimed is not None
    transitions.mark_failed(order.id, token=claimed.claim_token, reason="card declined", code="declined")


@pytest.mark.django_db
def test_a_failed_order_gives_its_units_back(two_each):
    fail(buy(quantity=2))

    assert held() == 0
    buy(quantity=2)  # the customer may buy them again
    assert held() == 2


@pytest.mark.django_db
def test_a_staff_retry_counts_the_units_again_without_the_limits_check(two_each, jobs):
    failed = buy(quantity=2)
    fail(failed)
    buy(quantity=2)  # meanwhile the customer bought their two again

    operations.retry_failed(failed.id)  # staff decided: the order is charged after all

    assert held() == 4
    assert Order.objects.get(pk=failed.pk).status == "accepted"


@pytest.mark.django_db
def test_an_unlimited_product_can_be_limited_per_customer_without_holding_stock(products):
    Product.objects.filter(sku="mug").update(per_customer_limit=1)

    buy(sku="mug")
    with pytest.raises(PerCustomerLimit):
        buy(sku="mug")

    mug = Product.objects.get(sku="mug")
    assert (mug.stock, mug.reserved) == (None, 0)
    assert CustomerAllowance.objects.get(product=mug).units == 1


@pytest.mark.django_db
def test_the_catalogue_shows_the_limit(two_each):
    results = {p["sku"]: p for p in APIClient().get("/api/products").json()["results"]}

    assert results["sneakers"]["per_customer_limit"] == 2
    assert results["mug"]["per_customer_limit"] is None
