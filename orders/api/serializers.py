"""Checkout API input and output shapes. Validation of form only; the catalogue is checked in services."""

from rest_framework import serializers

from orders.checkout import MAX_QUANTITY


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
    # Empty and over-long baskets are refused by the service, with plain messages.
    items = CheckoutLineInput(many=True)


class OrderItemOutput(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_price = serializers.DecimalField(max_digits=10, decimal_places=2)
    line_total = serializers.DecimalField(max_digits=12, decimal_places=2)


class OrderEventOutput(serializers.Serializer):
    # "from" is a keyword; declared below.
    to = serializers.CharField(source="to_status")
    at = serializers.DateTimeField()
    detail = serializers.CharField()

    def to_representation(self, instance):
        data = super().to_representation(instance)
        return {"from": instance.from_status or None, **data}


class OrderOutput(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    mode = serializers.CharField()
    email = serializers.EmailField()
    currency = serializers.CharField()
    total = serializers.DecimalField(max_digits=12, decimal_places=2)
    failure_reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    paid_at = serializers.DateTimeField()
    items = OrderItemOutput(many=True)
    events = OrderEventOutput(many=True)
