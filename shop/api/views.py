from django.conf import settings
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from shop.selectors import active_products

from .serializers import ProductOutput


class ProductListApi(APIView):
    def get(self, request: Request) -> Response:
        products = ProductOutput(active_products(), many=True).data
        return Response({"currency": settings.SHOP_CURRENCY, "results": products})
