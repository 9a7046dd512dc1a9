"""Idempotent checkout: a repeated request gets the first answer and creates nothing new."""

import json
from datetime import timedelta

import pytest
from django.db import OperationalError, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from orders import charging, checkout, idempotency, transitions
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
def test_a_key_abandoned_by_a_dead_request_is_taken_over_and_resumes_its_order(products, published_jobs):
    """The first request placed the order and died before storing its answer: the retry, once the
    key's lock ran out, answers with that same order and places no second one."""
    placed = post("/api/orders/async", BODY, "dead")
    IdempotencyKey.objects.update(state="in_progress", locked_until=timezone.now() - timedelta(seconds=1))

    response = post("/api/orders/async", BODY, "dead")

    assert response.status_code == 202
    assert response.json()["id"] == placed.json()["id"]
    assert Order.objects.count() == 1
    assert IdempotencyKey.objects.get().state == "done"


@pytest.mark.django_db
def test_the_key_is_bound_to_its_order_before_the_order_exists(products, published_jobs):
    response = post("/api/orders/async", BODY, "bound")

    key = IdempotencyKey.objects.get()
    assert str(key.order_uuid) == response.json()["id"] == str(key.order_id)


@pytest.mark.django_db(transaction=True)
def test_an_async_answer_that_cannot_be_stored_still_names_the_order_and_a_retry_never_places_another(
    products, published_jobs, monkeypatch
):
    def database_gone(*args, **kwargs):
        raise OperationalError("the database restarted")

    monkeypatch.setattr(idempotency, "finish", database_gone)
    first = post("/api/orders/async", BODY, "finish-fails")
    monkeypatch.undo()

    assert first.status_code == 202 and first["Location"] == f"/api/orders/{first.json()['id']}"
    assert post("/api/orders/async", BODY, "finish-fails").status_code == 409  # still locked: in progress
    IdempotencyKey.objects.update(locked_until=timezone.now() - timedelta(seconds=1))
    retry = post("/api/orders/async", BODY, "finish-fails")
    assert retry.status_code == 202 and retry.json()["id"] == first.json()["id"]
    assert Order.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_sync_charge_that_cannot_be_recorded_answers_with_the_order_and_is_charged_once(
    products, published_jobs, provider, monkeypatch, settings
):
    """The card is charged, then recording it fails (the database restarted): the answer is not a 503
    inviting a second order but a 202 naming this one; the retry replays it; the background finishes
    it with the same provider key."""

    def database_gone(*args, **kwargs):
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr(transitions, "mark_paid", database_gone)
    first = post("/api/orders/sync", BODY, "sync-record-fails")
    monkeypatch.undo()
    retry = post("/api/orders/sync", BODY, "sync-record-fails")

    assert first.status_code == retry.status_code == 202
    order_id = first.json()["id"]
    assert retry.json()["id"] == order_id and "charged at most once" in first.json()["detail"]
    assert Order.objects.count() == 1
    # The lease runs out; the sweeper releases the order and a worker charges it: the same key.
    Order.objects.filter(pk=order_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    settings.PAYMENT_SETTLE_SECONDS = 0
    assert transitions.release_if_lease_expired(order_id)
    assert charging.charge_order(order_id, timeout=5) is charging.Outcome.PAID
    order = Order.objects.get(pk=order_id)
    assert [c["id"] for c in provider.charges_for(order)] == [order.charge_id]


@pytest.mark.django_db
def test_a_failed_request_forgets_its_key_only_if_no_order_was_placed_under_it(products):
    nothing = idempotency.begin("checkout-async", "nothing-placed", "print")
    placed = idempotency.begin("checkout-async", "order-placed", "print")
    with transaction.atomic():
        checkout.create_order(email="a@example.com", lines=[checkout.Line("mug", 1)], mode="async",
                              order_id=placed.order_id)  # fmt: skip

    idempotency.abandon(nothing)
    idempotency.abandon(placed)

    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["order-placed"]
    # ...unlocked: the client's retry resumes that order at once, rather than a 409 until the lock ends.
    resumed = idempotency.begin("checkout-async", "order-placed", "print")
    assert isinstance(resumed, idempotency.Reservation)
    assert resumed.resumed and resumed.order_id == placed.order_id


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
