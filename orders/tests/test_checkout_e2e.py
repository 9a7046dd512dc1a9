"""Checkout end to end: real celery workers consuming from the SQS emulator, the real sandbox."""

import threading
import time

import httpx
import pytest

from orders.models import Order
from tests.fixtures import wait_for_status

ORDER = {
    "email": "buyer@example.com",
    "items": [{"sku": "sneakers", "quantity": 1}, {"sku": "mug", "quantity": 2}],
}


@pytest.fixture
def shop(live_server, products) -> httpx.Client:
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        yield client


def test_an_async_order_is_charged_by_a_worker_and_ends_paid(shop, worker, provider):
    response = shop.post("/api/orders/async", json=ORDER)

    assert response.status_code == 202
    order = wait_for_status(Order.objects.get(pk=response.json()["id"]), "paid", "failed")
    assert order.status == "paid"
    assert [(e.from_status, e.to_status) for e in order.events.all()] == [
        ("", "accepted"),
        ("accepted", "processing"),
        ("processing", "paid"),
    ]
    charges = provider.charges_for(order)
    assert len(charges) == 1
    assert charges[0]["amount"] == 137_00  # 89.00 + 2 × 24.00, in cents
    assert order.charge_id == charges[0]["id"]
    api_view = shop.get(response.headers["Location"]).json()
    assert api_view["status"] == "paid"
    assert [e["to"] for e in api_view["events"]] == ["accepted", "processing", "paid"]


def test_a_sync_order_is_paid_inside_the_request(shop, provider):
    response = shop.post("/api/orders/sync", json=ORDER)

    assert response.status_code == 201
    data = response.json()
    assert data["status"] == "paid"
    assert [e["to"] for e in data["events"]] == ["accepted", "processing", "paid"]
    assert len(provider.charges_for(Order.objects.get(pk=data["id"]))) == 1


def test_a_declined_sync_order_is_402_and_ends_failed_with_the_reason(shop, provider):
    provider.configure(decline_rate=1.0)

    response = shop.post("/api/orders/sync", json=ORDER)

    assert response.status_code == 402
    data = response.json()
    assert data["status"] == "failed"
    assert data["failure_reason"] == "Your card was declined; nothing was charged."
    assert [e["to"] for e in data["events"]] == ["accepted", "processing", "failed"]
    assert provider.stats()["charges"] == 0


def test_a_declined_async_order_ends_failed(shop, worker, provider):
    provider.configure(decline_rate=1.0)

    response = shop.post("/api/orders/async", json=ORDER)

    order = wait_for_status(Order.objects.get(pk=response.json()["id"]), "paid", "failed")
    assert order.status == "failed"
    assert order.failure_reason == "Your card was declined."


def test_a_sync_order_the_provider_is_too_slow_for_is_504_then_charged_once_in_the_background(
    shop, worker, provider, settings
):
    settings.SYNC_PAYMENT_TIMEOUT_SECONDS = 0.5
    settings.PAYMENT_SETTLE_SECONDS = 2  # the provider's charge (1.5 s) is over by then
    provider.configure(latency_seconds=1.5)

    response = shop.post("/api/orders/sync", json=ORDER)

    assert response.status_code == 504
    assert response.json()["status"] == "accepted"
    order = wait_for_status(Order.objects.get(pk=response.json()["id"]), "paid", "failed")
    assert order.status == "paid"
    # The timed-out first attempt and the background retry share the idempotency key; the retry
    # waited for the first to settle, so it met no 409 and got the charge replayed.
    assert len(provider.charges_for(order)) == 1
    assert provider.stats()["keys_charged_more_than_once"] == 0
    assert "replayed" in order.events.get(to_status="paid").detail


def test_two_sync_orders_at_once_queue_at_a_one_at_a_time_provider(shop, provider):
    latency = 1.0
    provider.configure(latency_seconds=latency, concurrency=1)
    finished: list[float] = []
    codes: list[int] = []
    start = time.monotonic()

    def checkout():
        codes.append(shop.post("/api/orders/sync", json=ORDER).status_code)
        finished.append(time.monotonic() - start)

    threads = [threading.Thread(target=checkout) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert codes == [201, 201]
    first, second = sorted(finished)
    assert first == pytest.approx(latency, abs=0.5)
    assert second - first == pytest.approx(latency, abs=0.5)  # the second waited for the first
    assert provider.stats()["max_in_flight"] == 1
