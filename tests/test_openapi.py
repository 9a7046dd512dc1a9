"""The published API contract: docs/openapi.yaml is what the code generates, and the server serves it."""

import io
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from rest_framework.test import APIClient

COMMITTED = Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml"
REGENERATE = "make schema"


def generated() -> str:
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    return out.getvalue()


def test_the_committed_schema_is_what_the_code_generates():
    """A contract change is a reviewed change of docs/openapi.yaml: run `make schema` and commit it."""
    assert generated() == COMMITTED.read_text(), (
        f"the API changed: run `{REGENERATE}` and commit docs/openapi.yaml"
    )


def test_every_operation_declares_its_errors_and_checkout_its_idempotency_key():
    schema = yaml.safe_load(COMMITTED.read_text())
    operations = {op["operationId"]: op for item in schema["paths"].values() for op in item.values()}

    assert set(operations) == {"checkout_async", "checkout_sync", "order_detail", "product_list"}
    for name in ("checkout_async", "checkout_sync"):
        assert {"400", "409", "413", "415", "422", "429", "503"} <= set(operations[name]["responses"])
        assert [p["name"] for p in operations[name]["parameters"] if p["in"] == "header"] == [
            "Idempotency-Key"
        ]
    assert {"402", "504"} <= set(operations["checkout_sync"]["responses"])
    assert {"404", "429", "503"} <= set(operations["order_detail"]["responses"])


@pytest.mark.django_db
def test_the_server_serves_the_schema_and_offline_docs():
    api = APIClient()

    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    docs = api.get("/api/docs/")
    script = api.get("/api/docs/?script=")

    assert schema.status_code == 200
    assert schema.json()["info"]["title"] == "Flash-sale checkout API"
    assert docs.status_code == 200
    page = docs.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "cdn" not in page.lower() and "<script>" not in page  # nothing from elsewhere, no inline script
    assert script.status_code == 200 and "/api/schema/" in script.content.decode()
