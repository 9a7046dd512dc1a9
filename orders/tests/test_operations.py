"""Staff actions on orders (orders/operations.py): re-publish a waiting order, retry a failed one.

The retry's promise is the shop's: stock is taken back or nothing changes, and no order is charged
twice; the sandbox's ledger is the witness.
"""

import pytest

from orders import charging, checkout, operations, transitions
from orders.models import FailureCode, Order
from shop.models import Product
from tests.factories import make_order


def failed_order(product: Product, quantity: int = 1, *, code: str = FailureCode.DECLINED) -> Order:
    """An order placed through checkout (so its limited stock is reserved), then failed (released)."""
    order = checkout.create_order(
        email="a@example.com", lines=[checkout.Line(product.sku, quantity)], mode="async"
    )
    transitions.claim(order.id, lease_seconds=60)
    transitions.mark_failed(order.id, token=1, reason="Your card was declined.", code=code)
    order.refresh_from_db()
    return order


@pytest.fixture
def limited(products) -> Product:
    Product.objects.filter(pk=products["sneakers"].pk).update(stock=2)
    return Product.objects.get(pk=products["sneakers"].pk)


@pytest.mark.django_db
def test_republishing_a_waiting_order_publishes_a_job_and_notes_it_in_the_history(jobs, products):
    order = make_order(product=products["mug"])

    result = operations.republish(order.id)

    assert result.published and jobs.published == [order.id]
    event = order.events.last()
    assert (event.from_status, event.to_status) == ("accepted", "accepted")
    assert "re-published" in event.detail
    order.refresh_from_db()
    assert order.status == "accepted" and order.enqueued_at is not None


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["processing", "paid", "failed"])
def test_republishing_an_order_that_is_not_waiting_is_refused_and_changes_nothing(jobs, products, status):
    order = make_order(product=products["mug"], status=status)
    events = order.events.count()

    with pytest.raises(operations.ActionRefused, match=f"is {status}, not accepted"):
        operations.republish(order.id)

    assert jobs.published == []
    assert order.events.count() == events


@pytest.mark.django_db
def test_retrying_a_declined_order_reserves_its_stock_again_under_a_new_key(jobs, limited):
    order = failed_order(limited, 2)
    assert Product.objects.get(pk=limited.pk).reserved == 0  # released when it failed

    result = operations.retry_failed(order.id)

    order.refresh_from_db()
    assert (order.status, order.failure_reason, order.failure_code, order.attempts) == ("accepted", "", "", 0)
    assert order.payment_key == f"order-{order.id}-retry-1"
    assert Product.objects.get(pk=limited.pk).reserved == 2
    assert result.published and jobs.published == [order.id]
    event = order.events.last()
    assert (event.from_status, event.to_status) == ("failed", "accepted")
    assert "new provider key" in event.detail and "reserved 2 × sneakers again" in event.detail


@pytest.mark.django_db
def test_retrying_after_the_provider_was_unavailable_keeps_the_key(jobs, limited):
    order = failed_order(limited, code=FailureCode.UNAVAILABLE)

    operations.retry_failed(order.id)

    order.refresh_from_db()
    assert order.status == "accepted" and order.payment_key == Order.payment_key_for(order.id)
    assert "same provider key" in order.events.last().detail


@pytest.mark.django_db
def test_a_retry_whose_stock_is_gone_is_refused_and_changes_nothing(jobs, limited):
    order = failed_order(limited, 2)
    checkout.create_order(email="b@example.com", lines=[checkout.Line("sneakers", 1)], mode="async")
    before = Product.objects.values("reserved", "sold").get(pk=limited.pk)
    events = order.events.count()

    with pytest.raises(operations.ActionRefused, match="only 1 of Sneakers left and it needs 2"):
        operations.retry_failed(order.id)

    order.refresh_from_db()
    assert (order.status, order.failure_code, order.payment_key) == (
        "failed",
        "declined",
        f"order-{order.id}",
    )
    assert Product.objects.values("reserved", "sold").get(pk=limited.pk) == before
    assert order.events.count() == events and jobs.published == []


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["accepted", "processing", "paid"])
def test_retrying_an_order_that_did_not_fail_is_refused(jobs, products, status):
    order = make_order(product=products["mug"], status=status)

    with pytest.raises(operations.ActionRefused, match=f"is {status}, not failed"):
        operations.retry_failed(order.id)

    assert Order.objects.get(pk=order.id).status == status and jobs.published == []


# --- against the sandbox: the ledger says how often the order was charged ----------------------


def charges_of(provider, order: Order) -> list[dict]:
    return [c for c in provider.ledger() if c["metadata"].get("order_id") == str(order.id)]


@pytest.mark.django_db(transaction=True)
def test_a_declined_order_retried_is_charged_once_under_its_new_key(jobs, provider, products):
    provider.configure(decline_rate=1.0)
    order = make_order(product=products["mug"])
    assert charging.charge_order(order.id, timeout=5) is charging.Outcome.FAILED
    assert Order.objects.get(pk=order.id).failure_code == "declined"

    provider.configure(decline_rate=0.0)  # the customer's card is fixed
    operations.retry_failed(order.id)
    outcome = charging.charge_order(order.id, timeout=5)

    order.refresh_from_db()
    assert (outcome, order.status) == (charging.Outcome.PAID, "paid")
    charges = charges_of(provider, order)
    assert [c["idempotency_key"] for c in charges] == [f"order-{order.id}-retry-1"]
    assert order.charge_id == charges[0]["id"]
