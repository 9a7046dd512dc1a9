"""The demo catalogue that `manage.py seed_catalogue` loads."""

from decimal import Decimal

from django.db import transaction

from .models import Product

DEMO_PRODUCTS: list[tuple[str, str, Decimal]] = [
    ("flash-sneakers", "Flash Sneakers", Decimal("89.00")),
    ("limited-hoodie", "Limited Edition Hoodie", Decimal("59.50")),
    ("wireless-earbuds", "Wireless Earbuds", Decimal("129.99")),
    ("travel-mug", "Insulated Travel Mug", Decimal("24.00")),
    ("yoga-mat", "Non-slip Yoga Mat", Decimal("35.25")),
    ("desk-lamp", "LED Desk Lamp", Decimal("42.00")),
    ("phone-case", "Shockproof Phone Case", Decimal("19.99")),
    ("water-bottle", "Steel Water Bottle", Decimal("22.50")),
]

# The flash sale: limited stock (units for sale in total). Everything else is unlimited.
DEMO_STOCK: dict[str, int] = {"flash-sneakers": 100, "limited-hoodie": 250}


@transaction.atomic
def seed_demo_catalogue() -> tuple[int, int]:
    """Create or refresh the demo products; return (created, updated).

    Stock is set when a product is created only: a refresh never undoes staff's stock or the
    units already reserved and sold.
    """
    created = updated = 0
    for sku, name, price in DEMO_PRODUCTS:
        defaults = {"name": name, "price": price, "active": True}
        _, was_created = Product.objects.update_or_create(
            sku=sku, defaults=defaults, create_defaults={**defaults, "stock": DEMO_STOCK.get(sku)}
        )
        created += was_created
        updated += not was_created
    return created, updated
