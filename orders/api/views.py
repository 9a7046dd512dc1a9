"""Checkout API. Thin: validate the form, call a service, shape the answer."""

import uuid

from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orders import selectors, services
from payments.services import Outcome

from .serializers import CheckoutInput, OrderOutput

SYNC_STATUS = {
    Outcome.PAID: status.HTTP_201_CREATED,
    Outcome.FAILED: status.HTTP_402_PAYMENT_REQUIRED,
    # The provider gave no final answer in time: the order lives on and is charged in the background.
    Outcome.RETRY: status.HTTP_504_GATEWAY_TIMEOUT,
    Outcome.SKIPPED: status.HTTP_202_ACCEPTED,
}


def _lines(data: dict) -> list[services.Line]:
    return [services.Line(sku=item["sku"], quantity=item["quantity"]) for item in data["items"]]


def _order_response(order_id: uuid.UUID, http_status: int, **extra) -> Response:
    order = selectors.order_with_history(order_id)
    body = OrderOutput(order).data
    return Response(
        {**body, **extra}, status=http_status, headers={"Location": f"/api/orders/{order_id}"}
    )


class AsyncCheckoutApi(APIView):
    """Accept the order at once (202) and charge it in the background."""

    def post(self, request: Request) -> Response:
        form = CheckoutInput(data=request.data)
        form.is_valid(raise_exception=True)
        order = services.place_async_order(email=form.validated_data["email"], lines=_lines(form.validated_data))
        return _order_response(order.id, status.HTTP_202_ACCEPTED)


class SyncCheckoutApi(APIView):
    """Charge inside the request: 201 paid, 402 declined, 504 when the provider is too slow."""

    def post(self, request: Request) -> Response:
        form = CheckoutInput(data=request.data)
        form.is_valid(raise_exception=True)
        order, outcome = services.place_sync_order(
            email=form.validated_data["email"], lines=_lines(form.validated_data)
        )
        extra = {}
        if outcome is Outcome.RETRY:
            extra["detail"] = (
                "The payment provider did not confirm in time. Your order is kept and will be "
                "charged once in the background; follow its status at the Location URL."
            )
        return _order_response(order.id, SYNC_STATUS[outcome], **extra)


class OrderDetailApi(APIView):
    def get(self, request: Request, order_id: str) -> Response:
        try:
            order = selectors.order_with_history(uuid.UUID(order_id))
        except ValueError:
            order = None
        if order is None:
            return Response({"detail": "No such order."}, status=status.HTTP_404_NOT_FOUND)
        return Response(OrderOutput(order).data)
