from django.urls import path

from .views import AsyncCheckoutApi, OrderDetailApi, SyncCheckoutApi

urlpatterns = [
    path("orders/async", AsyncCheckoutApi.as_view(), name="checkout-async"),
    path("orders/sync", SyncCheckoutApi.as_view(), name="checkout-sync"),
    path("orders/<str:order_id>", OrderDetailApi.as_view(), name="order-detail"),
]
