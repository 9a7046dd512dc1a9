from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config.docs import docs_csp

admin.site.site_header = "Flash-sale checkout"
admin.site.site_title = "Flash-sale checkout admin"

urlpatterns = [
    path(settings.ADMIN_URL, admin.site.urls),
    # The OpenAPI 3 description (committed as docs/openapi.yaml) and its interactive docs, whose
    # Swagger UI comes from our own static files (drf-spectacular-sidecar): no CDN.
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "api/docs/",
        docs_csp(SpectacularSwaggerSplitView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
    path("api/", include("shop.api.urls")),
    path("api/", include("orders.api.urls")),
    path("", include("shop.urls")),
]
