"""Idempotent checkout: a repeated request gets the first answer and creates nothing new."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from orders.idempotency import fingerprint
from orders.models import IdempotencyKey, Order
from tests.fixtures import at_once

BODY = {"email": "buyer@example.com", "items": [{"sku": "mug", "quantity": 1}]}


def post(path, body, key, client=None):
    client = client or APIClient()
    return client.post(path, data=json.dumps(body), content_type="application/json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.mark.django_db
def test_the_same_key_and_body_replays_the_first_response_and_creates_one_order(
    products, published_jobs, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = post("/api/orders/async", BODY, "click-1")
        second = post("/api/orders/async", {"items": BODY["items"], "email": BODY["email"]}, "click-1")

    assert first.status_code == second.status_code == 202
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert second["Location"] == first["Location"]
    assert Order.objects.count() == 1
    assert len(published_jobs()) == 1


@pytest.mark.django_db
def test_the_same_key_with_a_different_body_is_422_and_creates_nothing(products, published_jobs):
    post("/api/orders/async", BODY, "click-2")

    response = post("/api/orders/async", {**BODY, "email": "other@example.com"}, "click-2")

    assert response.status_code == 422
    assert Order.objects.count() == 1


@pytest.mark.django_db
def test_a_key_still_in_progress_is_409(products, published_jobs):
    IdempotencyKey.objects.create(
        scope="checkout-async",
        key="busy",
        fingerprint=fingerprint(BODY),
        locked_until=timezone.now() + timedelta(seconds=60),
        expires_at=timezone.now() + timedelta(days=1),
    )

    response = post("/api/orders/async", BODY, "busy")

    assert response.status_code == 409
    assert response["Retry-After"] == "1"
    assert Order.objects.count() == 0


@pytest.mark.django_db
def test_keys_are_scoped_per_endpoint(products, published_jobs, provider):
    async_response = post("/api/orders/async", BODY, "shared")
    sync_response = post("/api/orders/sync", BODY, "shared")

    assert async_response.json()["id"] != sync_response.json()["id"]
    assert Order.objects.count() == 2


@pytest.mark.django_db
def test_a_bad_request_is_replayed_too(products, published_jobs):
    bad = {**BODY, "email": "nope"}

    first = post("/api/orders/async", bad, "bad-1")
    second = post("/api/orders/async", bad, "bad-1")

    assert first.status_code == second.status_code == 400
    assert second["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "caf\u00e9", "bell\x07"])
def test_an_empty_overlong_or_unprintable_key_is_a_400(products, published_jobs, key):
    response = post("/api/orders/async", BODY, key)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_idempotency_key"
    assert "Idempotency-Key" in response.json()["errors"]
    assert Order.objects.count() == 0


@pytest.mark.django_db
def test_an_expired_key_starts_afresh(products, published_jobs):
    post("/api/orders/async", BODY, "old")
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    again = post("/api/orders/async", BODY, "old")

    assert again.status_code == 202
    assert "Idempotent-Replayed" not in again
    assert Order.objects.count() == 2


@pytest.mark.django_db
def test_a_key_abandoned_by_a_dead_request_is_taken_over(products, published_jobs):
    post("/api/orders/async", BODY, "dead")
    IdempotencyKey.objects.update(state="in_progress", locked_until=timezone.now() - timedelta(seconds=1))

    response = post("/api/orders/async", BODY, "dead")

    assert response.status_code == 202
    assert IdempotencyKey.objects.get().state == "done"


@pytest.mark.django_db
def test_a_sync_replay_does_not_charge_again(products, published_jobs, provider):
    first = post("/api/orders/sync", BODY, "sync-1")
    second = post("/api/orders/sync", BODY, "sync-1")

    assert first.status_code == second.status_code == 201
    assert second.json()["id"] == first.json()["id"]
    assert provider.stats()["requests"] == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_double_clicks_create_one_order(products, published_jobs):
    results = at_once(lambda: post("/api/orders/async", BODY, "double-click").status_code, 8)

    assert Order.objects.count() == 1
    assert results.count(202) >= 1
    assert set(results) <= {202, 409}
