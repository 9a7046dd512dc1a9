from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import ErrorOutput
from shop.selectors import active_products

from .serializers import ProductOutput


class ProductListApi(APIView):
    @extend_schema(
        operation_id="product_list",
        summary="The catalogue: active products and what is left of limited ones",
        responses={
            200: inline_serializer(
                "ProductList", {"currency": serializers.CharField(), "results": ProductOutput(many=True)}
            ),
            503: OpenApiResponse(
                ErrorOutput, description="`service_unavailable`: the database is unreachable."
            ),
        },
    )
    def get(self, request: Request) -> Response:
        products = ProductOutput(active_products(), many=True).data
        return Response({"currency": settings.SHOP_CURRENCY, "results": products})
