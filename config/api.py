"""The one place domain errors become HTTP answers."""

import logging

from django.db import DatabaseError, InterfaceError, OperationalError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from orders.exceptions import (
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    IllegalTransition,
    InvalidIdempotencyKey,
    InvalidOrder,
    TransitionConflict,
)
from shop.exceptions import OutOfStock

log = logging.getLogger(__name__)


def exception_handler(exc, context):
    if isinstance(exc, InvalidOrder):
        return Response(exc.errors, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, InvalidIdempotencyKey):
        return Response({"Idempotency-Key": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, IdempotencyKeyReused):
        return Response({"detail": str(exc)}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
    if isinstance(exc, OutOfStock):
        return Response(
            {
                "detail": str(exc),
                "code": "out_of_stock",
                "sku": exc.sku,
                "left": exc.left,
                "requested": exc.requested,
            },
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, IdempotencyKeyInUse):
        return Response(
            {"detail": str(exc), "code": "request_in_progress"},
            status=status.HTTP_409_CONFLICT,
            headers={"Retry-After": "1"},
        )
    if isinstance(exc, (IllegalTransition, TransitionConflict)):
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, (OperationalError, InterfaceError)):
        # The transaction rolled back whole; tell the client to retry rather than 500.
        log.error("database unavailable: %s", exc)
        return Response(
            {"detail": "The shop cannot take orders right now. Nothing was charged; please retry."},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "5"},
        )
    if isinstance(exc, DatabaseError):
        return None
    return drf_exception_handler(exc, context)
