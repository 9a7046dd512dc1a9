"""Writes of stock outside the hot path: sell or release when an order ends, staff's retry and
stock edits, the reconciliation's repair.

The checkout's reservation and the payment's sale are PostgreSQL functions (shop_reserve in
shop/migrations/0006, orders_pay in orders/migrations/0011) that lock rows in the same product-id
order as these. Every write here is ONE conditional UPDATE per limited product, so no reader ever
decides for a writer (no read-then-write race) and no lock outlives the caller's short
transaction. The callers (orders.transitions, orders.operations) own the transaction and run
these last in it, so the hot row's lock is held from this statement to the commit only.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.db.models import Case, F, Q, When

from . import soldout
from .exceptions import OutOfStock, StockBelowCommitted
from .models import CustomerAllowance, Product, StockChange

# (product id, quantity) pairs. Callers pass lines of limited products only.
Units = Iterable[tuple[int, int]]


def _in_lock_order(units: Units) -> list[tuple[int, int]]:
    # Two orders touching the same two products lock them in the same order: no deadlock.
    return sorted(units)


def reserve(units: Units) -> None:
    """Hold `quantity` units of each product, or raise OutOfStock (the caller's transaction rolls back).

        UPDATE shop_product SET reserved = reserved + q
         WHERE id = p AND (stock IS NULL OR stock >= reserved + sold + q)

    A product made unlimited since the order read it still counts the units it holds, so that
    selling or releasing them later balances.
    """
    for product_id, quantity in _in_lock_order(units):
        enough = Q(stock__isnull=True) | Q(stock__gte=F("reserved") + F("sold") + quantity)
        if not Product.objects.filter(enough, pk=product_id).update(reserved=F("reserved") + quantity):
            product = Product.objects.get(pk=product_id)
            left = product.left or 0
            refusal = OutOfStock(sku=product.sku, name=product.name, requested=quantity, left=left)
            soldout.remember(refusal, product_id)
            raise refusal


def sell(units: Units) -> None:
    """Turn reservations into sales (the order was paid)."""
    for product_id, quantity in _in_lock_order(units):
        Product.objects.filter(pk=product_id).update(
            reserved=F("reserved") - quantity, sold=F("sold") + quantity
        )


def sell_again(units: Units) -> None:
    """Sell units a failed order had released, found paid after all (the reconciliation), or raise
    OutOfStock when they were sold to someone else meanwhile (the caller's transaction rolls back)."""
    for product_id, quantity in _in_lock_order(units):
        enough = Q(stock__isnull=True) | Q(stock__gte=F("reserved") + F("sold") + quantity)
        if not Product.objects.filter(enough, pk=product_id).update(sold=F("sold") + quantity):
            product = Product.objects.get(pk=product_id)
            raise OutOfStock(sku=product.sku, name=product.name, requested=quantity, left=product.left or 0)


def release(units: Units) -> None:
    """Put reserved units back on sale (the order failed)."""
    released = _in_lock_order(units)
    for product_id, quantity in released:
        Product.objects.filter(pk=product_id).update(reserved=F("reserved") - quantity)
    soldout.forget(product_ids=(product_id for product_id, _ in released))


def give_back(customer: str, units: Units) -> None:
    """A failed order's units return to the customer's allowance."""
    for product_id, quantity in _in_lock_order(units):
        CustomerAllowance.objects.filter(product_id=product_id, customer=customer).update(
            units=Case(When(units__gte=quantity, then=F("units") - quantity), default=0)
        )


def count_again(customer: str, units: Units) -> None:
    """Count a failed order's units again (staff retried it, or it was found paid): no limit check,
    a person or the provider's books decided."""
    for product_id, quantity in _in_lock_order(units):
        allowance, _ = CustomerAllowance.objects.get_or_create(product_id=product_id, customer=customer)
        CustomerAllowance.objects.filter(pk=allowance.pk).update(units=F("units") + quantity)


@transaction.atomic
def set_stock(product_id: int, stock: int | None, *, by=None) -> StockChange:
    """Set a product's total stock (None = unlimited) and record who did it, in one transaction.

    Raises StockBelowCommitted when `stock` is below the units already reserved and sold.
    """
    # Staff edits are rare: lock the row so the audit's "before" is exactly what was replaced.
    product = Product.objects.select_for_update().get(pk=product_id)
    if stock is not None and stock < product.reserved + product.sold:
        raise StockBelowCommitted(
            f"{product.sku} has {product.reserved} reserved and {product.sold} sold; stock cannot be {stock}."
        )
    Product.objects.filter(pk=product_id).update(stock=stock)
    soldout.forget(product_ids=[product_id])
    return StockChange.objects.create(
        product=product,
        old_stock=product.stock,
        new_stock=stock,
        reserved=product.reserved,
        sold=product.sold,
        changed_by=by,
    )
