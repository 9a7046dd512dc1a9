"""The scheduled drop: a product is refused before `sale_starts_at` and sold from that second on."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from orders.models import Order, OrderItem
from shop.models import Product


def checkout(*items: tuple[str, int], path: str = "/api/orders/async"):
    body = {"email": "ann@example.com", "items": [{"sku": sku, "quantity": q} for sku, q in items]}
    return APIClient().post(path, body, format="json")


@pytest.fixture
def drop_in_a_minute(products) -> Product:
    starts_at = (timezone.now() + timedelta(minutes=1)).replace(microsecond=0)
    Product.objects.filter(sku="sneakers").update(sale_starts_at=starts_at, stock=10)
    return Product.objects.get(sku="sneakers")


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/orders/async", "/api/orders/sync"])
def test_before_the_drop_a_checkout_is_refused_and_creates_nothing(drop_in_a_minute, path):
    answer = checkout(("mug", 1), ("sneakers", 1), path=path)

    assert answer.status_code == 409
    assert answer.json()["code"] == "sale_not_started"
    assert answer.json()["sku"] == "sneakers"
    catalogue = {p["sku"]: p for p in APIClient().get("/api/products").json()["results"]}
    assert answer.json()["starts_at"] == catalogue["sneakers"]["sale_starts_at"]
    assert answer.json()["starts_at"].startswith(drop_in_a_minute.sale_starts_at.strftime("%Y-%m-%dT%H:%M"))
    assert Order.objects.count() == OrderItem.objects.count() == 0
    assert Product.objects.get(sku="sneakers").reserved == 0


@pytest.mark.django_db
def test_from_the_second_of_the_drop_the_product_sells(drop_in_a_minute):
    opened = timezone.now() - timedelta(seconds=1)
    Product.objects.filter(pk=drop_in_a_minute.pk).update(sale_starts_at=opened)

    answer = checkout(("sneakers", 2))

    assert answer.status_code == 202
    assert Product.objects.get(sku="sneakers").reserved == 2


@pytest.mark.django_db
def test_an_unknown_sku_is_still_a_400_beside_a_product_not_yet_on_sale(drop_in_a_minute):
    answer = checkout(("sneakers", 1), ("nope", 1))

    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid"


@pytest.mark.django_db
def test_the_catalogue_shows_when_each_sale_opens(drop_in_a_minute):
    results = {p["sku"]: p for p in APIClient().get("/api/products").json()["results"]}

    assert results["sneakers"]["sale_starts_at"] == drop_in_a_minute.sale_starts_at.isoformat().replace(
        "+00:00", "Z"
    )
    assert results["mug"]["sale_starts_at"] is None
