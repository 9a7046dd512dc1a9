"""The browser shop: a catalogue page whose checkout calls the API, and an order status page."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.storefront, name="storefront"),
    path("orders/<uuid:order_id>", views.order_status, name="order-status"),
]
