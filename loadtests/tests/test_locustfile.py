"""The locustfile as Locust runs it: the flash-sale shape, polling until paid, selection by tag, and what
it buys (`--product`), a sold-out answer counted apart when the run expects one."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings

from devstack.stack import BASE_DIR
from loadtests.instruments import EMAIL_DOMAIN, LOCUSTFILE
from orders import checkout_queue
from orders.models import Order, OrderItem
from tests.factories import ProductFactory

pytestmark = pytest.mark.lab


def locust(host: str, prefix: Path, *args: str) -> dict[str, dict]:
    """Run headless Locust to completion; return its stats rows by name."""
    result = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", host,
         "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING", *args],
        cwd=BASE_DIR, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr[-3000:]  # 1: some request failed, checked below
    with open(f"{prefix}_stats.csv") as fh:
        return {row["Name"]: row for row in csv.DictReader(fh)}


def history(prefix: Path) -> list[dict]:
    with open(f"{prefix}_stats_history.csv") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.django_db(transaction=True)
def test_a_flash_sale_goes_calm_burst_calm_and_async_users_follow_orders_to_paid(
    live_server, products, provider, start_worker, tmp_path
):
    start_worker(concurrency=4)
    prefix = tmp_path / "sale"

    stats = locust(
        live_server.url, prefix, "AsyncCheckoutUser", "--order-tag", "flash-test", "--user-rate", "2",
        "--calm-rate", "2", "--calm-seconds", "3", "--burst-rate", "6", "--burst-seconds", "3",
        "--poll-until-paid", "--poll-interval", "0.2", "--csv-full-history",
    )  # fmt: skip

    checkout = stats["POST /api/orders/async"]
    assert int(checkout["Request Count"]) > 0
    assert int(checkout["Failure Count"]) == 0
    assert int(stats["accepted → paid"]["Request Count"]) > 0
    users = [int(row["User Count"]) for row in history(prefix) if row["Name"] == "Aggregated"]
    assert max(users) == 3  # 6 orders/s at 2 per user
    assert users[0] <= 1 and users[-1] <= 1  # calm on both sides
    tagged = Order.objects.filter(email__endswith=f"@flash-test.{EMAIL_DOMAIN}")
    assert tagged.count() >= int(checkout["Request Count"])
    assert tagged.filter(status="paid").count() >= int(stats["accepted → paid"]["Request Count"])


@pytest.mark.django_db(transaction=True)
def test_the_sync_tag_selects_only_the_sync_checkout(live_server, products, provider, tmp_path):
    stats = locust(live_server.url, tmp_path / "sync", "--tags", "sync", "-u", "2", "-r", "2", "-t", "3s",
                   "--order-tag", "tag-test")  # fmt: skip

    # Locust stops with sync checkouts still queued at the provider; the live server finishes them
    # after it. Let them, so that they cannot run into (and fail) whichever test comes next.
    tagged = Order.objects.filter(email__endswith=f"@tag-test.{EMAIL_DOMAIN}")
    deadline = time.monotonic() + 30
    while tagged.filter(status__in=["accepted", "processing"]).exists() and time.monotonic() < deadline:
        time.sleep(0.1)

    assert int(stats["POST /api/orders/sync"]["Request Count"]) > 0
    assert "POST /api/orders/async" not in stats
    assert set(tagged.values_list("mode", flat=True)) == {"sync"}


@pytest.mark.django_db(transaction=True)
def test_sync_queue_users_wait_out_each_checkout_queue_503_and_retry_with_their_key_to_a_final_answer(
    live_server, products, provider, tmp_path, settings, empty_line
):
    provider.configure(latency_seconds=0.5)
    settings.SYNC_CHECKOUT_CHARGE_SECONDS = 0.5  # a place in line: Retry-After 1 s
    tagged = Order.objects.filter(email__endswith=f"@queue-test.{EMAIL_DOMAIN}")

    # Four customers at a provider of one slot (and one on deck): two of them wait in line.
    stats = locust(live_server.url, tmp_path / "queue", "SyncQueueCheckoutUser", "-u", "4", "-r", "4",
                   "-t", "4s", "--order-tag", "queue-test")  # fmt: skip
    deadline = time.monotonic() + 30  # the checkouts admitted when Locust stopped end (see above)
    while tagged.filter(status__in=["accepted", "processing"]).exists() and time.monotonic() < deadline:
        time.sleep(0.1)

    final, queued = stats["POST /api/orders/sync"], stats["POST /api/orders/sync [checkout_queue]"]
    assert int(final["Request Count"]) > 0 and int(final["Failure Count"]) == 0
    assert int(queued["Request Count"]) > 0 and int(queued["Failure Count"]) == 0
    # One whole wait (first try → final answer) a checkout, and orders only for admitted checkouts.
    assert stats["first try → final answer"]["Request Count"] == final["Request Count"]
    assert (
        int(final["Request Count"]) <= tagged.filter(status="paid").count() <= int(final["Request Count"]) + 2
    )
    assert "POST /api/orders/sync [past timeout]" not in stats


@pytest.fixture
def empty_line():
    """No place left in the sync checkout's line by users Locust stopped while they waited."""
    yield
    redis.Redis.from_url(django_settings.REDIS_URL).delete(*checkout_queue._keys())


@pytest.mark.django_db(transaction=True)
def test_hot_buys_one_unit_of_the_limited_product_and_a_409_is_expected_only_in_a_sold_out_run(
    live_server, stack, empty_queue, tmp_path
):
    flash = ProductFactory(sku="flash", name="Flash", stock=4)
    ProductFactory(sku="mug", name="Mug")  # unlimited: a hot crowd never buys it
    crowd = ("AsyncCheckoutUser", "--product", "hot", "--hot-sku", "flash", "-u", "2", "-r", "2", "-t", "3s",
             "--user-rate", "4")  # fmt: skip

    expected = locust(
        live_server.url, tmp_path / "sold-out", *crowd, "--order-tag", "hot-a", "--expect-sold-out"
    )
    unexpected = locust(live_server.url, tmp_path / "not-expected", *crowd, "--order-tag", "hot-b")

    accepted, refused = expected["POST /api/orders/async"], expected["POST /api/orders/async [sold out]"]
    assert (int(accepted["Request Count"]), int(accepted["Failure Count"])) == (4, 0)
    assert int(refused["Request Count"]) > 0 and int(refused["Failure Count"]) == 0
    items = OrderItem.objects.filter(order__email__endswith=f"@hot-a.{EMAIL_DOMAIN}")
    assert list(items.values_list("product__sku", "quantity")) == [("flash", 1)] * 4
    flash.refresh_from_db()
    assert flash.reserved == flash.stock == 4
    # Sold out already, in a run that does not expect it: every 409 is a failure, under the 202s' name.
    assert "POST /api/orders/async [sold out]" not in unexpected
    row = unexpected["POST /api/orders/async"]
    assert int(row["Failure Count"]) == int(row["Request Count"]) > 0
    assert not Order.objects.filter(email__endswith=f"@hot-b.{EMAIL_DOMAIN}").exists()
