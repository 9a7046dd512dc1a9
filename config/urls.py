from csp.decorators import csp_update
from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from console import views

admin.site.site_header = "Flash-sale checkout"
admin.site.site_title = "Flash-sale checkout admin"
admin.site.index_template = "console/admin_index.html"  # links the operations console

# The operations console (console/) lives under the admin's URL and behind its login (staff only).
admin_view = admin.site.admin_view
# The API docs page (Swagger UI from drf-spectacular-sidecar) under the site's Content-Security-Policy:
# its init script is a URL of its own (SpectacularSwaggerSplitView), so script-src stays 'self';
# Swagger UI styles elements inline, so this page alone may use inline styles.
docs_csp = csp_update({"style-src": ["'unsafe-inline'"]})
urlpatterns = [
    path(f"{settings.ADMIN_URL}operations/", admin_view(views.console), name="admin-operations"),
    path(
        f"{settings.ADMIN_URL}operations/snapshot.json",
        admin_view(views.snapshot_json),
        name="admin-operations-json",
    ),
    path(
        f"{settings.ADMIN_URL}operations/redrive/",
        admin_view(views.redrive),
        name="admin-operations-redrive",
    ),
    path(
        f"{settings.ADMIN_URL}operations/reconciliation/",  # before <slug:action>, which would take it
        admin_view(views.reconciliation),
        name="admin-operations-reconciliation",
    ),
    path(
        f"{settings.ADMIN_URL}operations/<slug:action>/",
        admin_view(views.order_action),
        name="admin-operations-order",
    ),
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
