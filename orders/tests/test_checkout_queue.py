"""The sync checkout's queue (orders/checkout_queue.py): admission, FIFO places, leases, the 503."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
import redis
from django.conf import settings as django_settings
from django.utils import timezone
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from orders import charging, checkout, checkout_queue, idempotency
from orders.exceptions import CheckoutQueued
from orders.models import IdempotencyKey, Order

BODY = {"email": "buyer@example.com", "items": [{"sku": "mug", "quantity": 1}]}


def queue_keys() -> list[str]:
    return checkout_queue._keys()


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(django_settings.REDIS_URL)


@pytest.fixture(autouse=True)
def queue(settings):
    """An empty line in front of a provider of one slot, one on deck, 3 s a charge (the defaults)."""
    settings.SYNC_CHECKOUT_QUEUE = True
    settings.PAYMENT_PROVIDER_CONCURRENCY = 1
    settings.SYNC_CHECKOUT_ON_DECK = 1
    settings.SYNC_CHECKOUT_CHARGE_SECONDS = 3
    settings.SYNC_CHECKOUT_MAX_RETRY_AFTER = 10
    settings.SYNC_CHECKOUT_ABANDON_SECONDS = 5
    redis_client().delete(*queue_keys())
    yield
    redis_client().delete(*queue_keys())


@pytest.fixture
def clock(monkeypatch):
    """The queue's clock, moved by hand: `clock.now += seconds`."""

    class Clock:
        now = 1_000_000.0

    monkeypatch.setattr(checkout_queue, "_now", lambda: Clock.now)
    return Clock


def refused(key: str | None) -> CheckoutQueued:
    with pytest.raises(CheckoutQueued) as refusal:
        checkout_queue.admit(key)
    return refusal.value


def leases() -> int:
    return redis_client().zcard(queue_keys()[2])


def fill_the_provider() -> list[checkout_queue.Lease]:
    """Hold every slot: one charging and one on deck."""
    return [checkout_queue.admit(f"holder-{n}") for n in range(checkout_queue.limit())]


def test_checkouts_are_admitted_up_to_the_providers_slots_plus_those_on_deck_then_queued():
    held = fill_the_provider()

    refusal = refused("carol")

    assert len(held) == 2 and all(lease.token for lease in held) and leases() == 2
    assert (refusal.position, refusal.retry_after, refusal.keyed) == (0, 1, True)  # the head: every second
    assert "You are number 1 in line" in str(refusal)


def counted(answer: str) -> float:
    return REGISTRY.get_sample_value("flashsale_sync_checkout_queue_total", {"answer": answer}) or 0.0


def test_each_answer_of_the_queue_is_counted():
    admitted, queued = counted("admitted"), counted("queued")

    fill_the_provider()
    refused("carol")

    assert (counted("admitted"), counted("queued")) == (admitted + 2, queued + 1)


def test_a_retry_with_the_same_key_keeps_its_place_and_a_newcomer_waits_behind():
    first, _ = fill_the_provider()
    assert refused("carol").position == 0
    assert refused("dave").position == 1

    checkout_queue.release(first)  # a slot frees...
    newcomer = refused("erin")  # ...and a newcomer who arrives first still waits behind both

    assert newcomer.position == 2
    assert checkout_queue.admit("carol").token  # the head takes the slot when it retries
    assert refused("dave").position == 0  # now next
    assert refused("erin").position == 1


def test_retry_after_grows_with_the_place_at_the_providers_pace_and_is_bounded(settings):
    fill_the_provider()

    waits = [refused(f"customer-{n}").retry_after for n in range(6)]

    # (customers ahead − free slots) × 3 s per charge ÷ 1 slot, at least 1 s, at most 10 s.
    assert waits == [1, 3, 6, 9, 10, 10]


def test_an_abandoned_place_lapses_after_its_retry_after_plus_the_abandon_bound(clock):
    first, _ = fill_the_provider()
    assert refused("gone").retry_after == 1
    assert refused("dave").position == 1

    clock.now += 1 + 5 - 0.5  # within its bound, "gone" still holds the head of the line
    checkout_queue.release(first)
    assert refused("dave").position == 1
    clock.now += 1  # past it: its place lapses and the line moves up

    assert checkout_queue.admit("dave").token


def test_a_lease_whose_holder_died_expires_after_the_sync_timeout_plus_a_margin(clock, settings):
    settings.SYNC_PAYMENT_TIMEOUT_SECONDS = 30
    fill_the_provider()  # two processes die holding their leases: never released

    clock.now += checkout_queue.lease_seconds() - 1
    assert refused("carol").position == 0  # still held: a live request may still be charging
    clock.now += 2

    assert checkout_queue.lease_seconds() == 60  # the sync payment timeout + 30 s for recording
    assert checkout_queue.admit("carol").token


def test_the_lease_is_released_however_the_admitted_checkout_ends():
    with pytest.raises(RuntimeError), checkout_queue.admitted("carol"):
        assert leases() == 1
        raise RuntimeError("the provider call blew up")

    assert leases() == 0


def test_a_request_without_a_key_takes_no_place_and_never_passes_those_waiting():
    first, _ = fill_the_provider()
    assert refused("carol").position == 0

    keyless = refused(None)
    checkout_queue.release(first)  # a slot is free, but carol waits for it
    still = refused(None)

    assert (keyless.position, keyless.keyed) == (1, False)
    assert still.position == 1 and "Idempotency-Key" in str(still)
    assert redis_client().zcard(queue_keys()[0]) == 1  # carol's ticket only
    assert checkout_queue.admit("carol").token
    assert refused(None).position == 0  # nobody waits, but both slots are held again


def test_a_request_without_a_key_is_admitted_when_nobody_waits():
    assert checkout_queue.admit(None).token


def test_no_queue_when_it_is_off_or_the_provider_has_no_limit(settings):
    fill_the_provider()
    settings.SYNC_CHECKOUT_QUEUE = False
    assert checkout_queue.admit("carol") == checkout_queue.Lease()
    settings.SYNC_CHECKOUT_QUEUE = True
    settings.PAYMENT_PROVIDER_CONCURRENCY = 0

    assert checkout_queue.admit("carol") == checkout_queue.Lease()


def test_without_redis_a_checkout_is_admitted_rather_than_refused(monkeypatch):
    unreachable = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    monkeypatch.setattr(checkout_queue, "_client", lambda: unreachable)
    monkeypatch.setattr(checkout_queue, "_admit_script", lambda: unreachable.register_script("return 0"))

    lease = checkout_queue.admit("carol")
    checkout_queue.release(lease)  # nothing to release where nothing was held: no error either

    assert lease == checkout_queue.Lease()  # admitted, holding nothing: the shop as before the queue


# --- The API: POST /api/orders/sync ---------------------------------------------------------------


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def post(api: APIClient, body: dict, key: str | None = None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return api.post("/api/orders/sync", data=json.dumps(body), content_type="application/json", **headers)


@pytest.mark.django_db
def test_a_full_provider_answers_503_checkout_queue_at_once_and_creates_nothing(api, products):
    fill_the_provider()

    response = post(api, BODY, "carol")

    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    data = response.json()
    assert (data["code"], data["position"], data["retry_after"]) == ("checkout_queue", 0, 1)
    assert "number 1 in line" in data["detail"] and "Nothing was ordered or charged" in data["detail"]
    assert Order.objects.count() == 0
    assert IdempotencyKey.objects.count() == 0  # the key is free for the retry, which runs afresh
    assert post(api, BODY, "dave").json()["position"] == 1
    assert post(api, BODY, "carol").json()["position"] == 0  # the retry kept its place


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"email": "nope", "items": [{"sku": "mug", "quantity": 1}]}, 400, "invalid"),
        ({"email": "a@example.com", "items": [{"sku": "no-such-sku", "quantity": 1}]}, 400, "invalid"),
        ({"email": "a@example.com", "items": []}, 400, "invalid"),
        ({"email": "a@example.com", "items": [{"sku": "sneakers", "quantity": 3}]}, 409, "out_of_stock"),
    ],
)
def test_bad_input_is_answered_before_the_line_and_changes_nothing(api, products, body, status, code):
    products["sneakers"].stock = 2
    products["sneakers"].save()
    fill_the_provider()

    response = post(api, body, "bad-input")

    assert (response.status_code, response.json()["code"]) == (status, code)
    assert Order.objects.count() == 0
    assert redis_client().zcard(queue_keys()[0]) == 0  # no place taken in line
    assert leases() == 2


@pytest.mark.django_db
def test_a_stored_answer_is_replayed_without_waiting_in_line(api, products, published_jobs, monkeypatch):
    monkeypatch.setattr(charging, "charge_order", lambda order_id, *, timeout: charging.Outcome.RETRY)
    first = post(api, BODY, "carol")
    fill_the_provider()

    replay = post(api, BODY, "carol")

    assert first.status_code == replay.status_code == 504
    assert replay["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_the_slot_is_released_when_the_provider_times_out(api, products, published_jobs, monkeypatch):
    monkeypatch.setattr(charging, "charge_order", lambda order_id, *, timeout: charging.Outcome.RETRY)

    response = post(api, BODY, "carol")

    assert response.status_code == 504  # no final answer in time: the order is charged in the background
    assert leases() == 0


@pytest.mark.django_db
def test_the_slot_is_released_when_the_charge_raises(products, published_jobs, monkeypatch):
    def provider_broke(order_id, *, timeout):
        raise RuntimeError("an unexpected error in the charge")

    monkeypatch.setattr(charging, "charge_order", provider_broke)
    api = APIClient(raise_request_exception=False)

    response = post(api, BODY, "carol")

    assert response.status_code == 500
    assert leases() == 0


# --- Live: the real sandbox over HTTP, a crowd of customers retrying as the storefront does -------


def customer_until_final(client: httpx.Client, index: int) -> list[httpx.Response]:
    """One customer: the same key until a final answer, waiting each 503's Retry-After in between."""
    body = {"email": f"customer-{index}@example.com", "items": [{"sku": "mug", "quantity": 1}]}
    answers = []
    while len(answers) < 200:
        answer = client.post("/api/orders/sync", json=body, headers={"Idempotency-Key": f"crowd-{index}"})
        answers.append(answer)
        if answer.status_code != 503:
            return answers
        assert answer.json()["code"] == "checkout_queue"
        time.sleep(int(answer.headers["Retry-After"]))
    return answers


def test_twenty_customers_at_a_one_at_a_time_provider_all_end_paid_and_none_waits_out_a_timeout(
    live_server, products, provider, published_jobs, settings
):
    provider.configure(latency_seconds=0.5, concurrency=1)
    settings.SYNC_CHECKOUT_CHARGE_SECONDS = 0.5
    settings.SYNC_PAYMENT_TIMEOUT_SECONDS = 30

    # A client that would give up on any request reaching the sync timeout: none may.
    with httpx.Client(base_url=live_server.url, timeout=settings.SYNC_PAYMENT_TIMEOUT_SECONDS) as client:
        barrier = threading.Barrier(20)

        def customer(index: int) -> list[httpx.Response]:
            barrier.wait()
            return customer_until_final(client, index)

        with ThreadPoolExecutor(20) as pool:
            crowds = list(pool.map(customer, range(20)))

    finals = [answers[-1] for answers in crowds]
    assert [answer.status_code for answer in finals] == [201] * 20
    assert all(answer.status_code in (201, 503) for answers in crowds for answer in answers)  # no 504
    assert sum(len(answers) - 1 for answers in crowds) > 0  # the provider was full: some waited in line
    assert Order.objects.filter(status="paid").count() == Order.objects.count() == 20
    stats = provider.stats()
    assert stats["charges"] == 20 and stats["keys_charged_more_than_once"] == 0
    # Admission control: never more at the provider than its slot plus the one on deck.
    assert stats["max_in_flight"] == 1 and stats["max_waiting"] <= 1
    assert leases() == 0


@pytest.mark.django_db
def test_a_resumed_checkout_whose_order_holds_the_last_unit_is_not_refused_as_sold_out(
    api, products, published_jobs, monkeypatch
):
    products["sneakers"].stock = 1
    products["sneakers"].save()
    body = {"email": "buyer@example.com", "items": [{"sku": "sneakers", "quantity": 1}]}
    # A first request placed the order under its key, then its process died before answering.
    first = idempotency.begin("checkout-sync", "died", idempotency.fingerprint(body))
    checkout.place_async_order(
        email=body["email"], lines=[checkout.Line("sneakers", 1)], order_id=first.order_id
    )
    IdempotencyKey.objects.update(locked_until=timezone.now() - timedelta(seconds=1))
    monkeypatch.setattr(charging, "charge_order", lambda order_id, *, timeout: charging.Outcome.RETRY)

    retry = post(api, body, "died")

    assert retry.status_code == 504 and retry.json()["id"] == str(first.order_id)  # resumed, not a 409
    assert Order.objects.count() == 1
