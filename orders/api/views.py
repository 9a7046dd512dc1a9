"""Checkout API. Thin: validate the form, call a service, shape the answer."""

import logging
import time
import uuid

from django.conf import settings
from django.db import DatabaseError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import ErrorOutput, TooLargeOutput
from observability import logging as log_context
from observability import metrics
from orders import checkout, checkout_queue, idempotency, selectors
from orders.charging import Outcome
from orders.models import Order, OrderStatus

from .serializers import (
    CheckoutInput,
    CheckoutQueueOutput,
    OrderOutput,
    OrderStatusOutput,
    OutOfStockOutput,
    SyncOrderOutput,
    order_body,
    placed_order_body,
    validated_checkout,
)
from .throttling import CheckoutRateThrottle, OrderStatusRateThrottle

log = logging.getLogger(__name__)

# What a sync request keeps of its deadline (WEB_TIMEOUT_SECONDS) for recording the charge and answering.
RECORD_MARGIN_SECONDS = 5
UNCONFIRMED = (
    "Your order is placed, but its payment could not be confirmed just now. It is charged at most "
    "once, in the background; follow its status at the Location URL. Retrying with the same "
    "Idempotency-Key returns this order, never a second one."
)

SYNC_STATUS = {
    Outcome.PAID: status.HTTP_201_CREATED,
    Outcome.FAILED: status.HTTP_402_PAYMENT_REQUIRED,
    # The provider gave no final answer in time: the order lives on and is charged in the background.
    Outcome.RETRY: status.HTTP_504_GATEWAY_TIMEOUT,
    Outcome.SKIPPED: status.HTTP_202_ACCEPTED,
}


def _lines(data: dict) -> list[checkout.Line]:
    return [checkout.Line(sku=item["sku"], quantity=item["quantity"]) for item in data["items"]]


def _order_response(order: Order, http_status: int, *, body=order_body, **extra) -> Response:
    log_context.bind(order_id=order.id)  # the rest of this request's lines, and its access line
    return Response(
        {**body(order), **extra}, status=http_status, headers={"Location": f"/api/orders/{order.id}"}
    )


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    # Printable ASCII, no space at either end (the key is compared stripped).
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": f"^{idempotency.KEY_PATTERN.pattern}$"},
    OpenApiParameter.HEADER,
    description=(
        "1–255 characters, one per checkout attempt. A repeat with the same key and body gets the "
        "first answer again (with `Idempotent-Replayed: true`) and creates nothing; the same key with "
        "another body is a 422; while the first request runs, a 409 `request_in_progress`."
    ),
)


BASKET = OpenApiExample(
    "Two travel mugs",
    value={"email": "ann@example.com", "items": [{"sku": "travel-mug", "quantity": 2}]},
    request_only=True,
)


def _error(description: str, serializer=ErrorOutput) -> OpenApiResponse:
    return OpenApiResponse(serializer, description=description)


THROTTLED = _error("`throttled`: over this client's rate limit; `Retry-After` says when to retry.")
UNAVAILABLE = _error("`service_unavailable`: the database is unreachable; nothing was done. Retry.")
CHECKOUT_ERRORS = {
    400: _error("`invalid` (`errors` names the fields), `parse_error` or `invalid_idempotency_key`."),
    409: _error(
        "`out_of_stock` (with `sku`, `left`, `requested`; nothing reserved), `per_customer_limit` "
        "(with `sku`, `limit`, `already`, `requested`), `sale_not_started` "
        "(with `sku`, `starts_at`; nothing created) or `request_in_progress` (with `Retry-After`).",
        OutOfStockOutput,
    ),
    413: _error("`request_too_large`: the body is over API_MAX_BODY_BYTES.", TooLargeOutput),
    415: _error("`unsupported_media_type`: send `Content-Type: application/json`."),
    422: _error("`idempotency_key_reused`: this Idempotency-Key came with another body."),
    429: THROTTLED,
    503: UNAVAILABLE,
}


class CheckoutApi(APIView):
    """A checkout endpoint; with an `Idempotency-Key` header, repeats get the first answer."""

    scope = ""
    mode = ""
    throttle_classes = [CheckoutRateThrottle]

    def dispatch(self, request, *args, **kwargs):
        """Time the whole answer, errors and throttling included (DRF's dispatch runs them all)."""
        started = time.perf_counter()
        self.deadline = time.monotonic() + settings.WEB_TIMEOUT_SECONDS
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            metrics.checkout_answered(self.mode, time.perf_counter() - started)

    def post(self, request: Request) -> Response:
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return self.checkout(request, order_id=None, resume=False)
        key = idempotency.check_key(key)
        begun = idempotency.begin(self.scope, key, idempotency.fingerprint(request.data))
        if isinstance(begun, idempotency.StoredResponse):
            return self.replay(begun)
        try:
            try:
                response = self.checkout(request, order_id=begun.order_id, resume=begun.resumed)
            except Exception as exc:
                response = self.handle_exception(exc)  # re-raises what DRF does not handle
        except BaseException:
            idempotency.abandon(begun)
            raise
        if response.status_code >= 500 and response.status_code != status.HTTP_504_GATEWAY_TIMEOUT:
            # Nothing was placed: the client's retry runs afresh. (Were an order placed under the key,
            # abandon keeps the key bound to it, and the retry resumes that order.)
            idempotency.abandon(begun)
            return response
        data = response.data if isinstance(response.data, dict) else {}
        try:
            idempotency.finish(begun, idempotency.StoredResponse(response.status_code, response.data),
                               order_id=data.get("id"))  # fmt: skip
        except DatabaseError:
            # The order is placed and the answer names it; the key stays bound to it, so a retry
            # after the key's lock resumes this order instead of placing another.
            log.warning("could not store the answer for an Idempotency-Key", exc_info=True)
        return response

    def replay(self, stored: idempotency.StoredResponse) -> Response:
        headers = {"Idempotent-Replayed": "true"}
        if isinstance(stored.body, dict) and "id" in stored.body:
            headers["Location"] = f"/api/orders/{stored.body['id']}"
            log_context.bind(order_id=stored.body["id"])
        return Response(stored.body, status=stored.status, headers=headers)

    def checkout(self, request: Request, *, order_id: uuid.UUID | None, resume: bool) -> Response:
        """Place (or, under a resumed Idempotency-Key, resume) the order `order_id` and answer."""
        raise NotImplementedError


class AsyncCheckoutApi(CheckoutApi):
    """Accept the order at once (202) and charge it in the background."""

    scope = "checkout-async"
    mode = "async"

    @extend_schema(
        operation_id="checkout_async",
        summary="Place an order; it is charged in the background",
        request=CheckoutInput,
        parameters=[IDEMPOTENCY_KEY],
        examples=[BASKET],
        responses={
            202: OpenApiResponse(OrderOutput, description="Accepted; `Location: /api/orders/<id>`."),
            **CHECKOUT_ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        return super().post(request)

    def checkout(self, request: Request, *, order_id: uuid.UUID | None, resume: bool) -> Response:
        form = validated_checkout(request.data)
        order = checkout.place_async_order(
            email=form["email"], lines=_lines(form), order_id=order_id, resume=resume
        )
        # As written: nothing read back. A resumed order may have moved on: the serializer's body.
        body = placed_order_body if order.status == OrderStatus.ACCEPTED and not resume else order_body
        return _order_response(order, status.HTTP_202_ACCEPTED, body=body)


class SyncCheckoutApi(CheckoutApi):
    """Charge inside the request: 201 paid, 402 declined, 504 when the provider is too slow."""

    scope = "checkout-sync"
    mode = "sync"

    @extend_schema(
        operation_id="checkout_sync",
        summary="Place an order and charge it inside the request",
        request=CheckoutInput,
        parameters=[IDEMPOTENCY_KEY],
        examples=[BASKET],
        responses={
            201: OpenApiResponse(SyncOrderOutput, description="Paid."),
            202: OpenApiResponse(
                SyncOrderOutput,
                description="Placed, but not settled by this request: another attempt holds it, or its "
                "payment could not be confirmed (`detail` says which). It is charged at most once in "
                "the background; follow `Location`.",
            ),
            402: OpenApiResponse(
                SyncOrderOutput, description="Declined: `status: failed`, `failure_reason`."
            ),
            504: OpenApiResponse(
                SyncOrderOutput,
                description="The provider gave no answer within SYNC_PAYMENT_TIMEOUT_SECONDS: the order "
                "is kept and charged once in the background (`detail` says so).",
            ),
            **CHECKOUT_ERRORS,
            503: _error(
                "`checkout_queue`: the payment provider is at capacity; nothing was created. `position`: "
                "customers waiting ahead (0: next); retry after `retry_after` seconds (`Retry-After`) "
                "with the same Idempotency-Key to keep the place. Or `service_unavailable`: the "
                "database is unreachable; nothing was done.",
                CheckoutQueueOutput,
            ),
        },
    )
    def post(self, request: Request) -> Response:
        return super().post(request)

    def checkout(self, request: Request, *, order_id: uuid.UUID | None, resume: bool) -> Response:
        form = validated_checkout(request.data)
        lines = _lines(form)
        if not resume:  # (a resumed key's order may be placed already, holding the last units itself)
            checkout.check_basket(lines)  # a basket placing would refuse is answered now, not after the line
        # The provider's turn (orders/checkout_queue.py): a 503 `checkout_queue` when it is full,
        # before anything is placed; the lease is held until the answer is built, however it ends.
        with checkout_queue.admitted(request.headers.get("Idempotency-Key", "").strip() or None):
            # The request's own deadline, enforced here rather than assumed from gunicorn's --timeout
            # (whose gthread workers never kill a slow request): the charge gets what is left of it.
            left = self.deadline - time.monotonic() - RECORD_MARGIN_SECONDS
            order, outcome = checkout.place_sync_order(
                email=form["email"], lines=lines, order_id=order_id, resume=resume, timeout=left
            )
        if outcome is None:
            return _order_response(order, status.HTTP_202_ACCEPTED, detail=UNCONFIRMED)
        extra = {}
        if outcome is Outcome.RETRY:
            extra["detail"] = (
                "The payment provider did not confirm in time. Your order is kept and will be "
                "charged once in the background; follow its status at the Location URL."
            )
        return _order_response(order, SYNC_STATUS[outcome], **extra)


class OrderDetailApi(APIView):
    throttle_classes = [OrderStatusRateThrottle]

    @extend_schema(
        operation_id="order_detail",
        summary="An order's status and history (email masked)",
        parameters=[OpenApiParameter("order_id", OpenApiTypes.STR, OpenApiParameter.PATH)],
        responses={
            200: OrderStatusOutput,
            404: _error("`not_found`: no order has this id (or it is not a UUID)."),
            429: THROTTLED,
            503: UNAVAILABLE,
        },
    )
    def get(self, request: Request, order_id: str) -> Response:
        try:
            order = selectors.order_with_history(uuid.UUID(order_id))
        except ValueError:
            order = None
        if order is None:
            return Response(
                {"code": "not_found", "detail": "No such order."}, status=status.HTTP_404_NOT_FOUND
            )
        log_context.bind(order_id=order.id)
        place = selectors.queue_place(order)
        return Response({**order_body(order), "queue": place.as_dict() if place else None})
