"""Checkout API: shapes, status codes, and bad input that must change nothing."""

import html
import json
import time
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from orders import charging, transitions
from orders.api.serializers import mask_email
from orders.models import Order, OrderEvent
from tests.factories import make_order

GOOD = {"email": "buyer@example.com", "items": [{"sku": "sneakers", "quantity": 2}]}


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def post(api, path, body):
    return api.post(path, data=json.dumps(body), content_type="application/json")


@pytest.mark.django_db
def test_async_checkout_accepts_at_once_with_location_and_server_side_total(api, products, published_jobs):
    body = {
        "email": "buyer@example.com",
        "items": [{"sku": "sneakers", "quantity": 2, "price": "0.01"}, {"sku": "mug", "quantity": 1}],
        "total": "0.01",
    }

    response = post(api, "/api/orders/async", body)

    assert response.status_code == 202
    data = response.json()
    assert response["Location"] == f"/api/orders/{data['id']}"
    assert data["status"] == "accepted"
    assert data["mode"] == "async"
    assert data["total"] == "202.00"  # 2 × 89.00 + 24.00: client prices ignored
    assert [(i["sku"], i["quantity"], i["unit_price"]) for i in data["items"]] == [
        ("sneakers", 2, "89.00"),
        ("mug", 1, "24.00"),
    ]
    assert [(e["from"], e["to"]) for e in data["events"]] == [(None, "accepted")]


@pytest.mark.django_db(transaction=True)
def test_async_checkout_publishes_the_payment_job_after_commit(api, products, published_jobs):
    response = post(api, "/api/orders/async", GOOD)

    assert published_jobs() == [uuid.UUID(response.json()["id"])]


@pytest.mark.django_db
def test_repeated_skus_are_merged_into_one_line(api, products, published_jobs):
    body = {"email": "a@example.com", "items": [{"sku": "mug", "quantity": 2}, {"sku": "mug", "quantity": 3}]}

    data = post(api, "/api/orders/async", body).json()

    assert [(i["sku"], i["quantity"]) for i in data["items"]] == [("mug", 5)]
    assert data["total"] == "120.00"


@pytest.mark.django_db
def test_order_detail_shows_items_and_events(api, products, published_jobs):
    order_id = post(api, "/api/orders/async", GOOD).json()["id"]

    response = api.get(f"/api/orders/{order_id}")

    assert response.status_code == 200
    data = response.json()
    assert {"id", "status", "mode", "total", "items", "events"} <= data.keys()
    assert data["id"] == order_id


@pytest.mark.django_db
@pytest.mark.parametrize("order_id", [str(uuid.uuid4()), "not-a-uuid", "123"])
def test_unknown_or_malformed_order_id_is_404(api, order_id):
    response = api.get(f"/api/orders/{order_id}")

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "No such order."}


@pytest.mark.django_db
def test_products_lists_only_active_products(api, products):
    data = api.get("/api/products").json()

    assert data["currency"] == "USD"
    assert [p["sku"] for p in data["results"]] == ["hoodie", "mug", "sneakers"]


BAD_BODIES = {
    "missing email": ({"items": GOOD["items"]}, "email"),
    "invalid email": ({**GOOD, "email": "not-an-email"}, "email"),
    "empty items": ({**GOOD, "items": []}, "items"),
    "missing items": ({"email": "a@example.com"}, "items"),
    "items not a list": ({**GOOD, "items": {"sku": "mug"}}, "items"),
    "unknown sku": ({**GOOD, "items": [{"sku": "nope", "quantity": 1}]}, "items"),
    "inactive sku": ({**GOOD, "items": [{"sku": "retired", "quantity": 1}]}, "items"),
    "quantity zero": ({**GOOD, "items": [{"sku": "mug", "quantity": 0}]}, "items"),
    "quantity negative": ({**GOOD, "items": [{"sku": "mug", "quantity": -1}]}, "items"),
    "quantity over 100": ({**GOOD, "items": [{"sku": "mug", "quantity": 101}]}, "items"),
    "quantity fractional": ({**GOOD, "items": [{"sku": "mug", "quantity": 1.5}]}, "items"),
    "quantity a string": ({**GOOD, "items": [{"sku": "mug", "quantity": "2"}]}, "items"),
    "quantity a boolean": ({**GOOD, "items": [{"sku": "mug", "quantity": True}]}, "items"),
    "quantity missing": ({**GOOD, "items": [{"sku": "mug"}]}, "items"),
    "merged quantity over 100": (
        {**GOOD, "items": [{"sku": "mug", "quantity": 60}, {"sku": "mug", "quantity": 41}]},
        "items",
    ),
    "more than 50 lines": ({**GOOD, "items": [{"sku": "mug", "quantity": 1}] * 51}, "items"),
    "body is a list": ([GOOD], "non_field_errors"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/orders/async", "/api/orders/sync"])
@pytest.mark.parametrize("case", BAD_BODIES.keys())
def test_bad_input_is_a_400_naming_the_field_and_creates_nothing(api, products, published_jobs, path, case):
    body, field = BAD_BODIES[case]

    response = post(api, path, body)

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid"
    assert field in response.json()["errors"]
    assert Order.objects.count() == 0
    assert OrderEvent.objects.count() == 0
    assert published_jobs() == []


@pytest.mark.django_db
def test_unknown_sku_error_points_at_the_line(api, products, published_jobs):
    body = {**GOOD, "items": [{"sku": "mug", "quantity": 1}, {"sku": "nope", "quantity": 1}]}

    errors = post(api, "/api/orders/async", body).json()["errors"]

    assert errors == {"items": [{}, {"sku": ["Unknown or unavailable product 'nope'."]}]}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/orders/async", "/api/orders/sync"])
def test_malformed_json_is_a_400_and_creates_nothing(api, products, published_jobs, path):
    response = api.post(path, data='{"email": "a@example.com", "items": [', content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert "JSON parse error" in response.json()["detail"]
    assert Order.objects.count() == 0


@pytest.mark.django_db
def test_a_form_post_is_refused_as_unsupported_media_type(api, products, published_jobs):
    response = api.post("/api/orders/async", data={"email": "a@example.com"})

    assert response.status_code == 415
    assert Order.objects.count() == 0


@pytest.mark.django_db
def test_the_202_is_built_from_what_the_checkout_wrote_without_reading_the_order_back(
    api, products, published_jobs
):
    with CaptureQueriesContext(connection) as queries:
        response = post(
            api, "/api/orders/async", {"email": "a@example.com", "items": [{"sku": "mug", "quantity": 2}]}
        )

    assert response.status_code == 202
    assert [e["to"] for e in response.json()["events"]] == ["accepted"]
    assert [i["sku"] for i in response.json()["items"]] == ["mug"]
    reads = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    assert not [sql for sql in reads if '"orders_' in sql], reads  # only the catalogue is read


@pytest.mark.django_db
def test_the_public_order_shows_a_masked_email_and_no_charge_id(api, products, published_jobs):
    order_id = post(api, "/api/orders/async", GOOD).json()["id"]
    transitions.claim(order_id, lease_seconds=60, detail="payment started")
    transitions.mark_paid(order_id, token=1, charge_id="ch_secret123", detail="charged ch_secret123")

    body = api.get(f"/api/orders/{order_id}").content.decode()

    assert json.loads(body)["email"] == "b****@example.com"
    assert "buyer@example.com" not in body
    assert "ch_secret123" not in body
    assert "charged (charge id withheld)" in body


@pytest.mark.django_db
def test_the_admin_shows_the_whole_email_and_the_charge_id(admin_client, products, published_jobs, api):
    order_id = post(api, "/api/orders/async", GOOD).json()["id"]
    transitions.claim(order_id, lease_seconds=60, detail="payment started")
    transitions.mark_paid(order_id, token=1, charge_id="ch_secret123", detail="charged ch_secret123")

    page = admin_client.get(f"/admin/orders/order/{order_id}/change/").content.decode()

    assert "buyer@example.com" in page and "ch_secret123" in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("code", "stored", "shown"),
    [
        ("declined", "Do not honor (issuer code 05)", "Your card was declined; nothing was charged."),
        (
            "rejected",
            "payment provider rejected the request (400): metadata.order_id: too long",
            "The payment provider refused the payment request; nothing was charged.",
        ),
        (
            "unavailable",
            "payment provider unavailable after 5 attempts; its books show no charge for this order",
            "The payment provider could not be reached; nothing was charged.",
        ),
        # Failed before failure codes were recorded: nothing known to say more than this.
        (
            "",
            "HTTPSConnectionPool(host='pay.example', port=443): Read timed out.",
            "The payment did not go through.",
        ),
    ],
)
def test_a_failed_order_tells_its_customer_a_plain_reason_and_keeps_the_providers_text_for_staff(
    api, admin_client, products, published_jobs, code, stored, shown
):
    order_id = post(api, "/api/orders/async", GOOD).json()["id"]
    transitions.claim(order_id, lease_seconds=60)
    transitions.mark_failed(order_id, token=1, reason=stored, code=code)

    data = api.get(f"/api/orders/{order_id}").json()
    staff_page = html.unescape(admin_client.get(f"/admin/orders/order/{order_id}/change/").content.decode())

    assert (data["status"], data["failure_reason"]) == ("failed", shown)
    assert stored in staff_page


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["accepted", "processing", "paid"])
def test_an_order_that_has_not_failed_has_no_failure_reason(api, products, status):
    order_id = make_order(product=products["mug"], status=status).id

    assert api.get(f"/api/orders/{order_id}").json()["failure_reason"] == ""


@pytest.mark.django_db
def test_an_order_failed_by_an_unreachable_provider_never_shows_the_providers_host(
    api, products, published_jobs, provider, settings
):
    settings.PAYMENT_MAX_ATTEMPTS = 1
    settings.PAYMENT_SETTLE_SECONDS = 0
    sandbox = settings.PAYMENT_PROVIDER_URL
    settings.PAYMENT_PROVIDER_URL = "http://127.0.0.1:9"  # nothing listens: urllib3 names host and port
    order_id = uuid.UUID(post(api, "/api/orders/async", GOOD).json()["id"])
    assert charging.charge_order(order_id, timeout=2) is charging.Outcome.RETRY
    settings.PAYMENT_PROVIDER_URL = sandbox  # its books answer: no charge for this order
    assert charging.charge_order(order_id, timeout=2) is charging.Outcome.FAILED

    body = api.get(f"/api/orders/{order_id}").content.decode()

    data = json.loads(body)
    assert data["failure_reason"] == "The payment provider could not be reached; nothing was charged."
    assert [e["to"] for e in data["events"]] == ["accepted", "processing", "accepted", "processing", "failed"]
    for leak in ("127.0.0.1", "port=9", "Errno", "Error", "urllib3", "Connection refused"):
        assert leak not in body


@pytest.mark.parametrize(
    ("email", "masked"), [("ann@example.com", "a**@example.com"), ("a@x.io", "a**@x.io"), ("bob", "***")]
)
def test_mask_email(email, masked):
    assert mask_email(email) == masked


@pytest.mark.django_db(transaction=True)
def test_a_sync_checkout_ends_inside_the_requests_own_deadline_not_gunicorns(
    api, products, published_jobs, provider, settings
):
    """gunicorn's gthread workers never kill a slow request: the view gives the charge only what is
    left of WEB_TIMEOUT_SECONDS (less the time it keeps for recording), whatever the sync timeout."""
    settings.WEB_TIMEOUT_SECONDS = 7  # 7 - 5 s for recording = 2 s for the provider
    settings.SYNC_PAYMENT_TIMEOUT_SECONDS = 30
    provider.configure(latency_seconds=6, concurrency=0)
    started = time.monotonic()

    response = post(api, "/api/orders/sync", GOOD)

    assert response.status_code == 504
    assert time.monotonic() - started < 4
    assert Order.objects.get(pk=response.json()["id"]).status == "accepted"
