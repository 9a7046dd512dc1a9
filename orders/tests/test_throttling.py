"""Rate limits per client, counted in the shared Redis cache (orders/api/throttling.py)."""

import json

import pytest
import redis
from django.conf import settings
from django.core.cache import cache
from rest_framework.test import APIClient

from orders.api.throttling import parse_rate

BODY = {"email": "buyer@example.com", "items": [{"sku": "mug", "quantity": 1}]}


def delete_counters() -> None:
    """This run's counters only (the cache's key prefix is per run, conftest.py): never FLUSHDB."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(match=f"{settings.CACHES['default']['KEY_PREFIX']}:*throttle:*"):
        client.delete(key)


@pytest.fixture(autouse=True)
def _fresh_counters():
    delete_counters()
    yield
    delete_counters()


def checkout(api: APIClient, client_ip: str):
    return api.post(
        "/api/orders/async", data=json.dumps(BODY), content_type="application/json", REMOTE_ADDR=client_ip
    )


@pytest.mark.parametrize(
    ("rate", "parsed"),
    [
        ("20/min", (20, 60)),
        ("5/s", (5, 1)),
        ("1000/hour", (1000, 3600)),
        ("2/day", (2, 86400)),
        ("0", None),
        ("", None),
    ],
)
def test_rates_use_drf_syntax_and_zero_turns_a_limit_off(rate, parsed):
    assert parse_rate(rate) == parsed


@pytest.mark.parametrize("rate", ["20", "x/min", "20/fortnight", "-1/min"])
def test_a_malformed_rate_is_refused(rate):
    with pytest.raises(ValueError, match="not a rate"):
        parse_rate(rate)


@pytest.mark.django_db
def test_many_clients_get_through_while_one_abusive_client_is_limited(
    products, published_jobs, settings, inside_a_rate_window
):
    settings.CHECKOUT_RATE_LIMIT = "3/min"
    api = APIClient()

    shoppers = [checkout(api, f"10.0.{n // 250}.{n % 250}").status_code for n in range(60) for _ in range(2)]
    abuser = [checkout(api, "203.0.113.9") for _ in range(20)]

    assert shoppers == [202] * 120  # 60 customers, 2 orders each: nobody limited
    assert [r.status_code for r in abuser] == [202] * 3 + [429] * 17
    refused = abuser[-1]
    assert refused.json()["code"] == "throttled"
    assert 1 <= int(refused["Retry-After"]) <= 60


@pytest.mark.django_db
def test_the_order_status_limit_is_separate_and_zero_turns_checkout_limits_off(
    products, published_jobs, settings, inside_a_rate_window
):
    settings.CHECKOUT_RATE_LIMIT = "0"
    settings.ORDER_STATUS_RATE_LIMIT = "2/min"
    api = APIClient()
    order_id = checkout(api, "198.51.100.1").json()["id"]

    assert [checkout(api, "198.51.100.1").status_code for _ in range(10)] == [202] * 10
    reads = [api.get(f"/api/orders/{order_id}", REMOTE_ADDR="198.51.100.1").status_code for _ in range(3)]
    assert reads == [200, 200, 429]


@pytest.mark.django_db
def test_behind_a_trusted_proxy_the_client_is_the_address_the_proxy_saw(
    products, published_jobs, settings, inside_a_rate_window
):
    settings.CHECKOUT_RATE_LIMIT = "1/min"
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    api = APIClient()

    def via_alb(client_ip: str, forged: str = "1.2.3.4"):
        return api.post(
            "/api/orders/async", data=json.dumps(BODY), content_type="application/json",
            REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=f"{forged}, {client_ip}",
        ).status_code  # fmt: skip

    assert [via_alb("198.51.100.7"), via_alb("198.51.100.8")] == [202, 202]
    assert via_alb("198.51.100.7", forged="5.6.7.8") == 429  # forging the left of the header does not help


@pytest.mark.django_db
def test_the_shop_stays_open_when_the_cache_is_down(products, published_jobs, settings, monkeypatch):
    settings.CHECKOUT_RATE_LIMIT = "1/min"

    def down(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(cache, "add", down)

    assert [checkout(APIClient(), "198.51.100.9").status_code for _ in range(3)] == [202] * 3
