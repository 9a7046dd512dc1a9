"""shop/soldout.py: a product seen sold out is refused from memory, for a bounded time, never admitted."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders import checkout
from orders.models import Order
from shop import soldout, stock
from shop.exceptions import OutOfStock
from shop.models import Product

Line = checkout.Line


def buy(sku: str = "sneakers", quantity: int = 1) -> Order:
    return checkout.place_async_order(email="ann@example.com", lines=[Line(sku, quantity)])


@pytest.fixture
def last_unit(products) -> Product:
    Product.objects.filter(sku="sneakers").update(stock=1)
    buy()  # the last unit
    with pytest.raises(OutOfStock):
        buy()  # the database refuses it, and this process remembers
    return Product.objects.get(sku="sneakers")


@pytest.mark.django_db
def test_a_sold_out_product_is_refused_from_memory_without_a_query(last_unit):
    with CaptureQueriesContext(connection) as queries, pytest.raises(OutOfStock) as refused:
        buy(quantity=2)

    assert len(queries) == 0
    assert (refused.value.sku, refused.value.requested, refused.value.left) == ("sneakers", 2, 0)
    assert str(refused.value) == "Sneakers is sold out."


@pytest.mark.django_db
def test_a_refusal_with_units_left_is_not_remembered(products):
    Product.objects.filter(sku="sneakers").update(stock=2)
    with pytest.raises(OutOfStock):
        buy(quantity=3)

    assert buy(quantity=2).items.get().quantity == 2


@pytest.mark.django_db
def test_units_released_in_this_process_are_for_sale_at_once(last_unit):
    stock.release([(last_unit.pk, 1)])  # a failed order gives its unit back

    assert buy().status == "accepted"


@pytest.mark.django_db
def test_staff_raising_the_stock_reopens_the_sale_at_once(last_unit):
    stock.set_stock(last_unit.pk, 5)

    assert buy().status == "accepted"


@pytest.mark.django_db
def test_the_memory_lasts_only_its_stated_bound(last_unit, settings, monkeypatch):
    # Units came back in another process: this one does not know, and refuses for at most the bound.
    Product.objects.filter(pk=last_unit.pk).update(stock=5)
    with pytest.raises(OutOfStock):
        buy()

    now = soldout.time.monotonic()
    monkeypatch.setattr(soldout.time, "monotonic", lambda: now + settings.SOLD_OUT_CACHE_SECONDS + 0.01)
    assert buy().status == "accepted"


@pytest.mark.django_db
def test_off_when_its_bound_is_zero(products, settings):
    settings.SOLD_OUT_CACHE_SECONDS = 0
    Product.objects.filter(sku="sneakers").update(stock=0)
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries, pytest.raises(OutOfStock):
            buy()
        assert len(queries) >= 1  # asked the database each time
