"""What the lab buys: the two products of a flash sale and the checkout bodies that buy them.

No Django and no Locust here: the locustfile (a gevent process), wrk's Lua scripts (written by
loadtests/study/saturation.py) and the phases (after `django.setup()`) all import it, so the
Locust crowd and wrk send the same baskets.

    unlimited  today's baskets: 1 to 3 lines of the unlimited products, 1 to 3 units each; the
               accept path of a catalogue that never runs out (one statement on PostgreSQL)
    hot        one line, one unit of the one limited product: the flash sale, a crowd on one row
"""

from __future__ import annotations

import random
import uuid

# The seeded catalogue's flash-sale product (shop/catalogue.py: DEMO_STOCK, 100 units when seeded).
HOT_SKU = "flash-sneakers"
PRODUCTS = ("unlimited", "hot")
MAX_LINES = 3
MAX_QUANTITY = 3
EMAIL_DOMAIN = "loadtest.example"


def email(tag: str) -> str:
    """A fresh buyer, tagged so that a run's orders can be found in the database (`@<tag>.<domain>`)."""
    return f"buyer-{uuid.uuid4().hex[:12]}@{tag}.{EMAIL_DOMAIN}"


def basket(product: str, skus: list[str], tag: str, rng: random.Random | None = None) -> dict:
    """A checkout body (orders/api/serializers.py CheckoutInput: email, items of sku and quantity).

    `skus`: the unlimited products to pick from (unlimited), or the hot product's (hot).
    """
    if product == "hot":
        return {"email": email(tag), "items": [{"sku": skus[0], "quantity": 1}]}
    rng = rng or random
    lines = rng.sample(skus, k=min(len(skus), rng.randint(1, MAX_LINES)))
    items = [{"sku": sku, "quantity": rng.randint(1, MAX_QUANTITY)} for sku in lines]
    return {"email": email(tag), "items": items}
