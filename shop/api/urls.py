from django.urls import path

from .views import ProductListApi

urlpatterns = [path("products", ProductListApi.as_view(), name="product-list")]
