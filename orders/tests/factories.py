"""Build orders in a given status without going through checkout (for state-machine tests)."""

import uuid
from decimal import Decimal

from orders.models import CheckoutMode, Order, OrderEvent, OrderItem
from shop.models import Product


def make_order(*, status: str = "accepted", product: Product | None = None, quantity: int = 1) -> Order:
    order_id = uuid.uuid4()
    product = product or Product.objects.create(
        sku=f"p-{order_id.hex[:8]}", name="Thing", price=Decimal("5.00")
    )
    order = Order.objects.create(
        id=order_id,
        email="buyer@example.com",
        mode=CheckoutMode.ASYNC,
        currency="USD",
        total=product.price * quantity,
        payment_key=f"order-{order_id}",
    )
    OrderItem.objects.create(
        order=order,
        product=product,
        sku=product.sku,
        name=product.name,
        quantity=quantity,
        unit_price=product.price,
    )
    # Tests may start an order in any status: set it directly, as a fixture, not as a transition.
    Order.objects.filter(pk=order.pk).update(status=status)
    OrderEvent.objects.create(order=order, from_status="", to_status="accepted", detail="placed")
    order.refresh_from_db()
    return order
