"""Sold-out answers for nearly nothing: a per-process memory of the products that just sold out.

The crowd that arrives after the last unit is the largest part of a flash sale. Without this,
every one of them costs a database round trip that can only be refused (and on PostgreSQL one
that waits for the hot product's row lock behind the last buyers). With it, the first refusal
of a sold-out product is remembered for SOLD_OUT_CACHE_SECONDS and every later checkout of it
in this process is refused from memory, with the same 409 `out_of_stock`.

The bound: a customer may be refused while units are for sale for at most SOLD_OUT_CACHE_SECONDS
after they came back (a failed order's release, staff raising the stock) in another process; the
process that releases or restocks forgets the product at once. The database stays the truth:
this only ever refuses, it never admits, so it cannot oversell.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from django.conf import settings

from .exceptions import OutOfStock

# sku -> (monotonic expiry, product id, product name). Plain dict operations: atomic under the GIL.
_remembered: dict[str, tuple[float, int | None, str]] = {}


def refuse(quantities: Mapping[str, int]) -> None:
    """Raise OutOfStock for the first sku of the basket remembered as sold out, if any."""
    if not _remembered:
        return
    now = time.monotonic()
    for sku, quantity in quantities.items():
        entry = _remembered.get(sku)
        if entry is None:
            continue
        expires, _, name = entry
        if now < expires:
            raise OutOfStock(sku=sku, name=name, requested=quantity, left=0)
        _remembered.pop(sku, None)


def remember(refusal: OutOfStock, product_id: int | None = None) -> None:
    """Remember a product the database just refused as sold out (a refusal with units left is not)."""
    ttl = settings.SOLD_OUT_CACHE_SECONDS
    if refusal.left == 0 and ttl > 0:
        _remembered[refusal.sku] = (time.monotonic() + ttl, product_id, refusal.name)


def forget(*, skus: Iterable[str] = (), product_ids: Iterable[int] = ()) -> None:
    """Units came back in this process: check these products in the database again."""
    for sku in skus:
        _remembered.pop(sku, None)
    ids = set(product_ids)
    if ids:
        for sku, (_, product_id, _) in list(_remembered.items()):
            if product_id is None or product_id in ids:  # an unknown id may be one of them: forget
                _remembered.pop(sku, None)
