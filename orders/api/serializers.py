"""Checkout API input and output shapes. Validation of form only; the catalogue is checked in services."""

from rest_framework import serializers

from core.errors import ErrorOutput
from orders.checkout import MAX_LINES, MAX_QUANTITY
from orders.models import CheckoutMode, FailureCode, Order, OrderStatus


class StrictIntegerField(serializers.IntegerField):
    """An integer that is a JSON integer: not "2", 2.0 or true."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class CheckoutLineInput(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    quantity = StrictIntegerField(min_value=1, max_value=MAX_QUANTITY)


class CheckoutInput(serializers.Serializer):
    """Only email and sku/quantity pairs are read; prices or totals sent by a client are ignored."""

    email = serializers.EmailField(max_length=254)
    # The line count is checked before any line is validated (a 60,000-line body costs nothing);
    # an empty basket is refused by the service, with a plain message.
    items = CheckoutLineInput(  # type: ignore[call-arg]  # many=True passes these to the ListSerializer
        many=True,
        max_length=MAX_LINES,
        error_messages={"max_length": f"An order can have at most {MAX_LINES} lines."},
    )


class OrderItemOutput(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_price = serializers.DecimalField(max_digits=10, decimal_places=2)
    line_total = serializers.DecimalField(max_digits=12, decimal_places=2)


class OrderEventOutput(serializers.Serializer):
    # "from" is a keyword, so it is declared through the class namespace (a DRF idiom).
    locals()["from"] = serializers.ChoiceField(
        choices=OrderStatus.choices,
        source="from_status",
        allow_null=True,
        help_text="null for the first event",
    )
    to = serializers.ChoiceField(choices=OrderStatus.choices, source="to_status")
    at = serializers.DateTimeField()
    detail = serializers.CharField()

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["from"] = data["from"] or None  # stored as "" for the first event
        return data


def mask_email(email: str) -> str:
    """`ann@example.com` → `a**@example.com`: enough for the customer to recognise, not to contact."""
    local, at, domain = email.partition("@")
    if not at:
        return "***"
    return f"{local[:1]}{'*' * max(len(local) - 1, 2)}@{domain}"


# What a customer is told when an order failed, by `Order.failure_code`. The stored
# `failure_reason` (the provider's message, or our technical text) is for staff: the admin shows it.
FAILURE_REASONS: dict[str, str] = {
    FailureCode.DECLINED: "Your card was declined; nothing was charged.",
    FailureCode.REJECTED: "The payment provider refused the payment request; nothing was charged.",
    # Failed `unavailable` only once the provider's books showed no charge for the order's key.
    FailureCode.UNAVAILABLE: "The payment provider could not be reached; nothing was charged.",
}
FAILED_WITHOUT_CODE = "The payment did not go through."  # failed before codes were recorded


def failure_reason(order: Order) -> str:
    """Why the order failed, in a plain sentence for its customer; "" unless it failed."""
    if order.status != OrderStatus.FAILED:
        return ""
    return FAILURE_REASONS.get(order.failure_code, FAILED_WITHOUT_CODE)


class OrderOutput(serializers.Serializer):
    """The order as anyone holding its id may see it: the email masked, no provider charge id."""

    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=OrderStatus.choices)
    mode = serializers.ChoiceField(choices=CheckoutMode.choices)
    email = serializers.SerializerMethodField(help_text="The customer's email, masked: `a**@example.com`.")
    currency = serializers.CharField()
    total = serializers.DecimalField(max_digits=12, decimal_places=2)
    failure_reason = serializers.SerializerMethodField(
        help_text=(
            "Why a failed order failed, a plain sentence for the customer (the provider's own message "
            "is for staff); empty otherwise."
        )
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    paid_at = serializers.DateTimeField(allow_null=True)
    items = OrderItemOutput(many=True)
    events = OrderEventOutput(many=True, help_text="Status changes, oldest first.")

    def get_email(self, order: Order) -> str:
        return mask_email(order.email)

    def get_failure_reason(self, order: Order) -> str:
        return failure_reason(order)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if instance.charge_id:  # the provider's charge id is for staff (the admin), not bearers of the id
            for event in data["events"]:
                event["detail"] = event["detail"].replace(instance.charge_id, "(charge id withheld)")
        return data


def _bound(serializer: serializers.Serializer) -> serializers.Serializer:
    """`serializer` with its fields built now, to be shared by every request and thread.

    DRF deep-copies a serializer's declared fields, its nested serializers' too, for every instance
    it makes: ~0.7 ms of CPU per order answered and ~0.15 ms per basket validated, as much as the
    accept's one statement costs. Representing an instance and validating data store nothing on the
    serializer, so one bound instance serves all (its `fields` are built here, before any thread).
    """
    _ = serializer.fields
    return serializer


_ORDER_OUTPUT = _bound(OrderOutput())
_CHECKOUT_INPUT = _bound(CheckoutInput())


def order_body(order: Order) -> dict:
    """`OrderOutput(order).data`, without building a serializer per call."""
    return _ORDER_OUTPUT.to_representation(order)


def placed_order_body(order: Order) -> dict:
    """`order_body` of an order just placed, its lines and first event in memory: the 202's body.

    Written out field by field with the serializer's own fields formatting each value: DRF's walk
    over the declared fields (an attribute lookup and an ordered dict per field, per line and per
    event) cost ~0.4 ms of CPU per accept, the largest part of the 202 after the statement.
    tests hold it equal to `order_body` for placed orders.
    """
    fields, item, event = _ORDER_OUTPUT.fields, _ITEM_FIELDS, _EVENT_FIELDS
    return {
        "id": str(order.id),
        "status": order.status,
        "mode": order.mode,
        "email": mask_email(order.email),
        "currency": order.currency,
        "total": fields["total"].to_representation(order.total),
        "failure_reason": failure_reason(order),
        "created_at": fields["created_at"].to_representation(order.created_at),
        "updated_at": fields["updated_at"].to_representation(order.updated_at),
        "paid_at": None if order.paid_at is None else fields["paid_at"].to_representation(order.paid_at),
        "items": [
            {
                "sku": line.sku,
                "name": line.name,
                "quantity": line.quantity,
                "unit_price": item["unit_price"].to_representation(line.unit_price),
                "line_total": item["line_total"].to_representation(line.line_total),
            }
            for line in order.items.all()
        ],
        "events": [
            {
                "from": e.from_status or None,
                "to": e.to_status,
                "at": event["at"].to_representation(e.at),
                "detail": e.detail,
            }
            for e in order.events.all()
        ],
    }


_ITEM_FIELDS = _bound(OrderItemOutput()).fields
_EVENT_FIELDS = _bound(OrderEventOutput()).fields


def validated_checkout(data) -> dict:
    """`CheckoutInput(data=data)`'s validated data, or its ValidationError (a 400 naming the fields)."""
    try:
        return _CHECKOUT_INPUT.run_validation(data)
    except serializers.ValidationError:
        # A refusal is rare: a fresh serializer raises it, in exactly the shape `is_valid` gives.
        CheckoutInput(data=data).is_valid(raise_exception=True)
        raise


class QueueOutput(serializers.Serializer):
    position = serializers.IntegerField(help_text="Orders ahead of this one, waiting to be charged.")
    eta_seconds = serializers.IntegerField(
        allow_null=True,
        help_text="Seconds until it is paid, at the last minute's paying rate; null: no rate yet.",
    )


class OrderStatusOutput(OrderOutput):
    queue = QueueOutput(
        allow_null=True, help_text="While the order waits: its place in line; null once final."
    )


class SyncOrderOutput(OrderOutput):
    detail = serializers.CharField(required=False, help_text="On a 504: what happens to the order next.")


class OutOfStockOutput(ErrorOutput):
    """A 409: `out_of_stock`, `per_customer_limit`, `sale_not_started` or `request_in_progress`."""

    sku = serializers.CharField(required=False)
    left = serializers.IntegerField(required=False)
    requested = serializers.IntegerField(required=False)
    limit = serializers.IntegerField(required=False, help_text="`per_customer_limit`: units per customer.")
    already = serializers.IntegerField(required=False, help_text="`per_customer_limit`: units they hold.")
    starts_at = serializers.DateTimeField(
        required=False, help_text="`sale_not_started`: when checkout opens."
    )


class CheckoutQueueOutput(ErrorOutput):
    """A sync checkout's 503: `checkout_queue` (the provider is full) or `service_unavailable`."""

    retry_after = serializers.IntegerField(
        required=False, help_text="`checkout_queue`: seconds to wait, as `Retry-After` says."
    )
    position = serializers.IntegerField(
        required=False, help_text="`checkout_queue`: customers waiting ahead (0: next)."
    )
