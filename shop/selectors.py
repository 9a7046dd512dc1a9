"""Reads of the catalogue."""

from collections.abc import Iterable

from django.db.models import QuerySet

from .models import Product


def active_products() -> QuerySet[Product]:
    return Product.objects.filter(active=True).order_by("name")


def active_products_by_sku(skus: Iterable[str]) -> dict[str, Product]:
    return {p.sku: p for p in Product.objects.filter(active=True, sku__in=list(skus))}
