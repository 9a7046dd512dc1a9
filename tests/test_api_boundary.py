"""The API's edge: one JSON error shape for every error under /api/, a body cap, bounded baskets."""

import json
import logging
import time

import pytest
from rest_framework.test import APIClient

from core.parsers import JSON_MAX_DEPTH
from orders.api.serializers import CheckoutLineInput
from orders.models import Order

GOOD = {"email": "buyer@example.com", "items": [{"sku": "mug", "quantity": 1}]}


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def assert_error_shape(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code and isinstance(body["detail"], str) and body["detail"]
    return body


@pytest.mark.django_db
def test_an_unknown_api_url_is_a_json_404(api):
    assert_error_shape(api.get("/api/no-such-thing"), 404, "not_found")
    assert_error_shape(api.get("/api/orders/async/extra"), 404, "not_found")


@pytest.mark.django_db
def test_a_wrong_method_is_a_json_405_with_allow(api):
    body_response = api.delete("/api/orders/async")

    assert_error_shape(body_response, 405, "method_not_allowed")
    assert "POST" in body_response["Allow"]


@pytest.mark.django_db
def test_a_form_post_is_a_json_415(api, products):
    assert_error_shape(
        api.post("/api/orders/async", data={"email": "a@example.com"}), 415, "unsupported_media_type"
    )


@pytest.mark.django_db
def test_an_unhandled_error_is_a_json_500(api, products, monkeypatch):
    def boom(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("orders.checkout.place_async_order", boom)
    api.raise_request_exception = False

    assert_error_shape(api.post("/api/orders/async", GOOD, format="json"), 500, "server_error")


@pytest.mark.django_db
def test_a_body_over_the_cap_is_a_json_413_read_by_nobody_and_logged_without_traceback(
    api, products, settings, caplog
):
    settings.API_MAX_BODY_BYTES = 16 * 1024
    huge = json.dumps({"email": "a@example.com", "items": [{"sku": "mug", "quantity": 1}] * 60_000})

    started = time.monotonic()
    with caplog.at_level(logging.INFO):
        response = api.post("/api/orders/async", data=huge, content_type="application/json")
    elapsed = time.monotonic() - started

    body = assert_error_shape(response, 413, "request_too_large")
    assert body["limit"] == 16 * 1024
    assert elapsed < 0.5  # refused from Content-Length: the 2.3 MB body is never parsed
    assert not [r for r in caplog.records if r.exc_info], "no traceback for a refused body"
    assert Order.objects.count() == 0


@pytest.mark.django_db
def test_the_line_count_is_checked_before_any_line_is_validated(api, products, settings, monkeypatch):
    """A body just under the cap with many lines costs one length check, not one validation per line."""
    settings.API_MAX_BODY_BYTES = 10_000_000
    validated = []
    original = CheckoutLineInput.to_internal_value
    monkeypatch.setattr(
        CheckoutLineInput,
        "to_internal_value",
        lambda self, data: validated.append(data) or original(self, data),
    )
    body = {"email": "a@example.com", "items": [{"sku": "mug", "quantity": 1}] * 60_000}

    response = api.post("/api/orders/async", body, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {
        "items": {"non_field_errors": ["An order can have at most 50 lines."]}
    }
    assert validated == []


@pytest.mark.django_db
def test_pages_outside_the_api_keep_their_html_errors(api):
    response = api.get("/no-such-page")

    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


def deeply_nested(depth: int, inside: str = "0") -> str:
    """A valid JSON value `depth` levels deep, objects and arrays in turn: {"a": [{"a": [… inside …]}]}."""
    opening = ['{"a": ' if level % 2 == 0 else "[" for level in range(depth)]
    closing = ["}" if level % 2 == 0 else "]" for level in reversed(range(depth))]
    return "".join(opening) + inside + "".join(closing)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/orders/async", "/api/orders/sync"])
def test_a_body_of_sixteen_thousand_brackets_is_a_400_parse_error_and_creates_nothing(api, products, path):
    api.raise_request_exception = False  # so that a RecursionError shows as the 500 a client would get

    response = api.post(path, data="[" * 16_000, content_type="application/json")

    body = assert_error_shape(response, 400, "parse_error")
    assert "nested" in body["detail"]
    assert Order.objects.count() == 0


@pytest.mark.django_db
def test_a_valid_basket_carrying_a_deeply_nested_value_is_a_400_parse_error_and_creates_nothing(
    api, products
):
    """Valid JSON, well within Python's recursion limit: refused for its depth, not for a crash."""
    api.raise_request_exception = False
    basket = json.dumps(GOOD)[:-1] + ', "note": ' + deeply_nested(100) + "}"
    assert json.loads(basket)["items"] == GOOD["items"]  # the body itself is fine JSON

    response = api.post("/api/orders/async", data=basket, content_type="application/json")

    body = assert_error_shape(response, 400, "parse_error")
    assert f"{JSON_MAX_DEPTH} levels" in body["detail"]
    assert Order.objects.count() == 0


@pytest.mark.django_db
def test_a_basket_nested_as_deep_as_allowed_is_accepted_and_one_level_more_is_not(api, products):
    """Brackets and braces inside strings do not count as nesting; the cap counts structure only."""
    room = JSON_MAX_DEPTH - 1  # the basket itself is the first level
    brackets = json.dumps('[{"[[{{\\' * 50)  # quotes and backslashes escaped: a string, not structure

    def basket(depth: int) -> str:
        return json.dumps(GOOD)[:-1] + ', "note": ' + deeply_nested(depth, inside=brackets) + "}"

    accepted = api.post("/api/orders/async", data=basket(room), content_type="application/json")
    refused = api.post("/api/orders/async", data=basket(room + 1), content_type="application/json")

    assert accepted.status_code == 202, accepted.content
    assert_error_shape(refused, 400, "parse_error")
    assert [str(order.id) for order in Order.objects.all()] == [accepted.json()["id"]]
