from rest_framework import serializers


class ProductOutput(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    price = serializers.DecimalField(max_digits=10, decimal_places=2)
    # null for an unlimited product
    left = serializers.IntegerField(allow_null=True)
    sold_out = serializers.BooleanField()
