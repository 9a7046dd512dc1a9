"""When the database is down the customer is told so and nothing is half-written."""

import json
from contextlib import contextmanager

import pytest
from django.db import connection
from rest_framework.test import APIClient

from orders.models import IdempotencyKey, Order, OrderEvent

BODY = {"email": "buyer@example.com", "items": [{"sku": "mug", "quantity": 1}]}


def close_pool() -> None:
    """Drop the connection pool, if any: the next connection builds one from the settings as they are now."""
    connection.close()
    if hasattr(connection, "close_pool"):
        connection.close_pool()


@contextmanager
def unreachable_database():
    """Point the connection at a database that does not answer; restore it afterwards."""
    saved = {**connection.settings_dict, "OPTIONS": dict(connection.settings_dict["OPTIONS"])}
    close_pool()
    connection.settings_dict["PORT"] = "1"  # nothing listens there
    if pool := connection.settings_dict["OPTIONS"].get("pool"):
        # A pool waits this long for a connection before giving up (the 503 comes after it).
        connection.settings_dict["OPTIONS"]["pool"] = {**pool, "timeout": 1}
    try:
        yield
    finally:
        close_pool()
        connection.settings_dict.update(saved)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/api/orders/async", "/api/orders/sync"])
@pytest.mark.parametrize("key", [None, "retry-me"])
def test_a_database_outage_is_a_503_and_writes_nothing(products, provider, path, key):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}

    with unreachable_database():
        response = APIClient().post(path, data=json.dumps(BODY), content_type="application/json", **headers)

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "nothing was charged" in response.json()["detail"]
    assert Order.objects.count() == OrderEvent.objects.count() == IdempotencyKey.objects.count() == 0
    assert provider.stats()["requests"] == 0
    # Once the database is back, the same request (and key) goes through.
    retry = APIClient().post(path, data=json.dumps(BODY), content_type="application/json", **headers)
    assert retry.status_code in (201, 202)
