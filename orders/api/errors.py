"""The checkout's domain errors as HTTP answers, in the API's one shape (core/api.py).

The orders' errors and the catalogue's that a checkout meets (out of stock, a per-customer limit, a
sale not open yet) map here to their status and `code`; every other exception goes on to the API
edge's handler (`core.api.exception_handler`: a database outage, throttling, DRF's own errors).
Settings wire this function as DRF's EXCEPTION_HANDLER. It lives with the orders' API because that
API is where both apps' errors surface, and orders already imports shop (core/ imports no app).
"""

from __future__ import annotations

from rest_framework import serializers

from core.api import api_error
from core.api import exception_handler as edge_exception_handler
from orders.exceptions import (
    CheckoutQueued,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    IllegalTransition,
    InvalidIdempotencyKey,
    InvalidOrder,
    TransitionConflict,
)
from shop.exceptions import OutOfStock, PerCustomerLimit, SaleNotStarted


def exception_handler(exc, context):
    if isinstance(exc, InvalidOrder):
        return api_error(400, "invalid", "The order is not valid.", errors=exc.errors)
    if isinstance(exc, InvalidIdempotencyKey):
        return api_error(400, "invalid_idempotency_key", str(exc), errors={"Idempotency-Key": [str(exc)]})
    if isinstance(exc, IdempotencyKeyReused):
        return api_error(422, "idempotency_key_reused", str(exc))
    if isinstance(exc, OutOfStock):
        return api_error(
            409, "out_of_stock", str(exc), sku=exc.sku, left=exc.left, requested=exc.requested
        )  # fmt: skip
    if isinstance(exc, PerCustomerLimit):
        return api_error(
            409, "per_customer_limit", str(exc), sku=exc.sku, limit=exc.limit, already=exc.already,
            requested=exc.requested,
        )  # fmt: skip
    if isinstance(exc, SaleNotStarted):
        starts_at = serializers.DateTimeField().to_representation(exc.starts_at)  # as the catalogue shows it
        return api_error(409, "sale_not_started", str(exc), sku=exc.sku, starts_at=starts_at)
    if isinstance(exc, IdempotencyKeyInUse):
        return api_error(409, "request_in_progress", str(exc), headers={"Retry-After": "1"})
    if isinstance(exc, CheckoutQueued):
        return api_error(
            503, "checkout_queue", str(exc), headers={"Retry-After": str(exc.retry_after)},
            retry_after=exc.retry_after, position=exc.position,
        )  # fmt: skip
    if isinstance(exc, (IllegalTransition, TransitionConflict)):
        return api_error(409, "conflict", str(exc))
    return edge_exception_handler(exc, context)
