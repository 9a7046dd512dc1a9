"""The one place errors become HTTP answers, and the API's edge.

Every error under /api/ has one JSON shape, whoever produced it (a domain error, DRF, Django's
URL resolver, an unhandled exception, the body cap):

    {"code": "<stable, machine-readable>", "detail": "<for people>", ...}

plus `errors` (field → messages) on a validation 400, and the stock figures on an `out_of_stock`
409. `code` values are part of the contract (docs/openapi.yaml, docs/api.md).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from http import HTTPStatus

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

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

from .errors import error_body, problem

log = logging.getLogger(__name__)

API_PREFIX = "/api/"

# The code of an error that carries none of its own, by HTTP status.
CODES = {
    400: "bad_request",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "throttled",
    500: "server_error",
    503: "service_unavailable",
}


def _error(http_status: int, code: str, detail: str, headers: dict | None = None, **extra) -> Response:
    return Response(error_body(code, detail, **extra), status=http_status, headers=headers)


def exception_handler(exc, context):
    if isinstance(exc, InvalidOrder):
        return _error(400, "invalid", "The order is not valid.", errors=exc.errors)
    if isinstance(exc, InvalidIdempotencyKey):
        return _error(400, "invalid_idempotency_key", str(exc), errors={"Idempotency-Key": [str(exc)]})
    if isinstance(exc, IdempotencyKeyReused):
        return _error(422, "idempotency_key_reused", str(exc))
    if isinstance(exc, OutOfStock):
        return _error(
            409, "out_of_stock", str(exc), sku=exc.sku, left=exc.left, requested=exc.requested
        )  # fmt: skip
    if isinstance(exc, PerCustomerLimit):
        return _error(
            409, "per_customer_limit", str(exc), sku=exc.sku, limit=exc.limit, already=exc.already,
            requested=exc.requested,
        )  # fmt: skip
    if isinstance(exc, SaleNotStarted):
        starts_at = serializers.DateTimeField().to_representation(exc.starts_at)  # as the catalogue shows it
        return _error(409, "sale_not_started", str(exc), sku=exc.sku, starts_at=starts_at)
    if isinstance(exc, IdempotencyKeyInUse):
        return _error(409, "request_in_progress", str(exc), headers={"Retry-After": "1"})
    if isinstance(exc, CheckoutQueued):
        return _error(
            503, "checkout_queue", str(exc), headers={"Retry-After": str(exc.retry_after)},
            retry_after=exc.retry_after, position=exc.position,
        )  # fmt: skip
    if isinstance(exc, (IllegalTransition, TransitionConflict)):
        return _error(409, "conflict", str(exc))
    if isinstance(exc, (OperationalError, InterfaceError)):
        # The transaction rolled back whole; tell the client to retry rather than 500.
        log.error("database unavailable: %s", exc)
        return _error(
            503,
            "service_unavailable",
            "The shop could not take the order just now; nothing was charged. Please retry: with "
            "the same Idempotency-Key a retry never places a second order.",
            headers={"Retry-After": "5"},
        )
    if isinstance(exc, DatabaseError):
        return None  # a bug: a 500, logged with its traceback (ApiBoundaryMiddleware shapes it)
    if isinstance(exc, exceptions.Throttled):
        wait = math.ceil(getattr(exc, "wait", None) or 1)
        return _error(
            429,
            "throttled",
            f"Too many requests from this client; retry in {wait} s.",
            headers={"Retry-After": str(wait)},
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = error_body("invalid", "The request is not valid.", errors=errors)
    elif isinstance(exc, exceptions.APIException):
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.default_detail)
        code = getattr(exc.detail, "code", None) or exc.default_code
        response.data = error_body(str(code), str(detail))
    return response


class ApiBoundaryMiddleware:
    """Under /api/: refuse a body over API_MAX_BODY_BYTES (413) unread, and shape every error as JSON.

    An error answered by a view is already in shape; what Django answers by itself (an unknown
    URL, a 500, a 400 for a bad Host) is an HTML page, replaced here by the JSON shape.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        too_large = self._refuse_large_body(request)
        if too_large is not None:
            return too_large
        response = self.get_response(request)
        if response.status_code >= 400 and not _is_json(response):
            response = self._shaped(response)
        return response

    def _refuse_large_body(self, request: HttpRequest) -> HttpResponse | None:
        limit = settings.API_MAX_BODY_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return problem(400, "bad_request", "Content-Length is not a number.")
        # Django reads no more than Content-Length (none: an empty body), so this bounds the read.
        return _too_large(limit) if length > limit else None

    def _shaped(self, response: HttpResponse) -> HttpResponse:
        code = CODES.get(response.status_code, f"http_{response.status_code}")
        try:
            phrase = HTTPStatus(response.status_code).phrase
        except ValueError:
            phrase = "Error"
        shaped = problem(response.status_code, code, f"{phrase}.")
        for header in ("Allow", "Retry-After"):
            if header in response:
                shaped[header] = response[header]
        return shaped


def _too_large(limit: int) -> JsonResponse:
    return problem(
        status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        "request_too_large",
        f"The request body is larger than {limit} bytes.",
        limit=limit,
    )


def _is_json(response: HttpResponse) -> bool:
    content_type = response.get("Content-Type", "")
    return content_type.startswith("application/json") or (
        content_type.startswith("application/problem+json")
    )
