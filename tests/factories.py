"""Test data, made one way (factory_boy): products, and orders in any status without a checkout."""

from __future__ import annotations

import uuid
from decimal import Decimal

import factory
from factory.django import DjangoModelFactory

from orders.models import CheckoutMode, Order, OrderEvent, OrderItem, OrderStatus
from shop.models import Product


class ProductFactory(DjangoModelFactory):
    class Meta:
        model = Product
        django_get_or_create = ("sku",)

    sku = factory.Sequence(lambda n: f"p-{n}")
    name = factory.LazyAttribute(lambda p: p.sku.replace("-", " ").title())
    price = Decimal("5.00")


class OrderItemFactory(DjangoModelFactory):
    class Meta:
        model = OrderItem

    product = factory.SubFactory(ProductFactory)
    sku = factory.SelfAttribute("product.sku")
    name = factory.SelfAttribute("product.name")
    unit_price = factory.SelfAttribute("product.price")
    quantity = 1


class OrderFactory(DjangoModelFactory):
    """An accepted order of one line, with its first event, as checkout would have left it."""

    class Meta:
        model = Order
        exclude = ("product", "quantity")
        skip_postgeneration_save = True

    product = factory.SubFactory(ProductFactory)
    quantity = 1

    id = factory.LazyFunction(uuid.uuid4)
    email = "buyer@example.com"
    mode = CheckoutMode.ASYNC
    currency = "USD"
    total = factory.LazyAttribute(lambda o: o.product.price * o.quantity)
    payment_key = factory.LazyAttribute(lambda o: Order.payment_key_for(o.id))
    item = factory.RelatedFactory(
        OrderItemFactory,
        factory_related_name="order",
        product=factory.SelfAttribute("..product"),
        quantity=factory.SelfAttribute("..quantity"),
    )
    placed = factory.RelatedFactory(
        "tests.factories.OrderEventFactory", factory_related_name="order", to_status=OrderStatus.ACCEPTED
    )


class OrderEventFactory(DjangoModelFactory):
    class Meta:
        model = OrderEvent

    from_status = ""
    to_status = OrderStatus.ACCEPTED
    detail = "placed"


def make_order(
    *, status: str = OrderStatus.ACCEPTED, product: Product | None = None, quantity: int = 1
) -> Order:
    """An order already in `status`: set directly, as a fixture, not as a transition."""
    order = OrderFactory(**({"product": product} if product else {}), quantity=quantity)
    Order.objects.filter(pk=order.pk).update(status=status)
    order.refresh_from_db()
    return order
