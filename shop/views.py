from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .selectors import active_products


def storefront(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "shop/storefront.html",
        {"products": active_products(), "currency": settings.SHOP_CURRENCY},
    )


def order_status(request: HttpRequest, order_id) -> HttpResponse:
    return render(request, "shop/order.html", {"order_id": order_id})
