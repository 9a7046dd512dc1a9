from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from .selectors import active_products


def storefront(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "shop/storefront.html",
        # The server's clock: a drop's countdown runs from it, not from the customer's.
        {"products": active_products(), "currency": settings.SHOP_CURRENCY, "now": timezone.now()},
    )


def order_status(request: HttpRequest, order_id) -> HttpResponse:
    return render(request, "shop/order.html", {"order_id": order_id})
