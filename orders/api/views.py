"""Checkout API. Thin: validate the form, call a service, shape the answer."""

import uuid

from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orders import checkout, idempotency, selectors
from orders.charging import Outcome
from orders.models import Order

from .serializers import CheckoutInput, OrderOutput

SYNC_STATUS = {
    Outcome.PAID: status.HTTP_201_CREATED,
    Outcome.FAILED: status.HTTP_402_PAYMENT_REQUIRED,
    # The provider gave no final answer in time: the order lives on and is charged in the background.
    Outcome.RETRY: status.HTTP_504_GATEWAY_TIMEOUT,
    Outcome.SKIPPED: status.HTTP_202_ACCEPTED,
}


def _lines(data: dict) -> list[checkout.Line]:
    return [checkout.Line(sku=item["sku"], quantity=item["quantity"]) for item in data["items"]]


def _order_response(order: Order, http_status: int, **extra) -> Response:
    body = OrderOutput(order).data
    return Response({**body, **extra}, status=http_status, headers={"Location": f"/api/orders/{order.id}"})


class CheckoutApi(APIView):
    """A checkout endpoint; with an `Idempotency-Key` header, repeats get the first answer."""

    scope = ""

    def post(self, request: Request) -> Response:
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return self.checkout(request)
        key = idempotency.check_key(key)
        stored = idempotency.begin(self.scope, key, idempotency.fingerprint(request.data))
        if stored is not None:
            return self.replay(stored)
        try:
            try:
                response = self.checkout(request)
            except Exception as exc:
                response = self.handle_exception(exc)  # re-raises what DRF does not handle
        except BaseException:
            idempotency.abandon(self.scope, key)
            raise
        if response.status_code >= 500 and response.status_code != status.HTTP_504_GATEWAY_TIMEOUT:
            idempotency.abandon(self.scope, key)  # nothing was done: let the client's retry run afresh
            return response
        idempotency.finish(
            self.scope,
            key,
            idempotency.StoredResponse(response.status_code, response.data),
            order_id=(response.data or {}).get("id") if isinstance(response.data, dict) else None,
        )
        return response

    def replay(self, stored: idempotency.StoredResponse) -> Response:
        headers = {"Idempotent-Replayed": "true"}
        if isinstance(stored.body, dict) and "id" in stored.body:
            headers["Location"] = f"/api/orders/{stored.body['id']}"
        return Response(stored.body, status=stored.status, headers=headers)

    def checkout(self, request: Request) -> Response:
        raise NotImplementedError


class AsyncCheckoutApi(CheckoutApi):
    """Accept the order at once (202) and charge it in the background."""

    scope = "checkout-async"

    def checkout(self, request: Request) -> Response:
        form = CheckoutInput(data=request.data)
        form.is_valid(raise_exception=True)
        order = checkout.place_async_order(
            email=form.validated_data["email"], lines=_lines(form.validated_data)
        )
        return _order_response(order, status.HTTP_202_ACCEPTED)  # as written: nothing read back


class SyncCheckoutApi(CheckoutApi):
    """Charge inside the request: 201 paid, 402 declined, 504 when the provider is too slow."""

    scope = "checkout-sync"

    def checkout(self, request: Request) -> Response:
        form = CheckoutInput(data=request.data)
        form.is_valid(raise_exception=True)
        order, outcome = checkout.place_sync_order(
            email=form.validated_data["email"], lines=_lines(form.validated_data)
        )
        extra = {}
        if outcome is Outcome.RETRY:
            extra["detail"] = (
                "The payment provider did not confirm in time. Your order is kept and will be "
                "charged once in the background; follow its status at the Location URL."
            )
        return _order_response(order, SYNC_STATUS[outcome], **extra)


class OrderDetailApi(APIView):
    def get(self, request: Request, order_id: str) -> Response:
        try:
            order = selectors.order_with_history(uuid.UUID(order_id))
        except ValueError:
            order = None
        if order is None:
            return Response({"detail": "No such order."}, status=status.HTTP_404_NOT_FOUND)
        return Response(OrderOutput(order).data)
