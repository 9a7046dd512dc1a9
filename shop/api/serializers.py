from rest_framework import serializers


class ProductOutput(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    price = serializers.DecimalField(max_digits=10, decimal_places=2)
    # null for an unlimited product
    left = serializers.IntegerField(allow_null=True)
    sold_out = serializers.BooleanField()
    # null: on sale now; else checkout opens at this instant (a countdown reads the Date header)
    sale_starts_at = serializers.DateTimeField(allow_null=True)
    per_customer_limit = serializers.IntegerField(allow_null=True)  # null: no limit
