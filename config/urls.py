from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Flash-sale checkout"
admin.site.site_title = "Flash-sale checkout admin"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("shop.api.urls")),
    path("api/", include("orders.api.urls")),
    path("", include("shop.urls")),
]
