"""Reconciliation: the provider's books (the real sandbox) against our orders, and its one repair.

Charges are made at the sandbox through the gateway, as a worker would have made them, but never
recorded on the order: what an answer lost after the charge, a crash or a late landing leaves behind.
The witness of what was charged is always the sandbox's ledger, read through its own client.
"""

import io
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from orders import checkout, reconciliation, transitions
from orders.models import Order, OrderStatus
from orders.reconciliation import KINDS, LedgerUnavailable, reconcile
from payments import gateway
from shop.models import Product
from tests.factories import make_order
from tests.fixtures import database_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def since():
    """The start of the window: just before the test's charges (the sandbox's books start empty)."""
    return timezone.now() - timedelta(seconds=1)


def charge_at_provider(order: Order, *, key: str | None = None, metadata: dict | None = None) -> str:
    """Charge as the worker does (the order's key, amount and metadata); the charge id."""
    result = gateway.charge(
        gateway.ChargeRequest(
            amount_minor=order.amount_minor,
            currency=order.currency,
            idempotency_key=key or order.payment_key,
            description=f"Order {order.id}",
            metadata={"order_id": str(order.id)} if metadata is None else metadata,
        ),
        timeout=5,
    )
    return result.charge_id


def paid_with(order: Order, charge_id: str) -> Order:
    claimed = transitions.claim(order.id, lease_seconds=60)
    assert claimed is not None
    transitions.mark_paid(order.id, token=claimed.claim_token, charge_id=charge_id)
    order.refresh_from_db()
    return order


def failed(order: Order) -> Order:
    claimed = transitions.claim(order.id, lease_seconds=60)
    assert claimed is not None
    transitions.mark_failed(
        order.id, token=claimed.claim_token, reason="provider unavailable", code="unavailable"
    )
    order.refresh_from_db()
    return order


def history(order: Order) -> list[tuple[str, str, str]]:
    return list(order.events.values_list("from_status", "to_status", "detail"))


@pytest.fixture
def sneakers(products) -> Product:
    """A limited product with one unit left."""
    Product.objects.filter(sku="sneakers").update(stock=1)
    return Product.objects.get(sku="sneakers")


def buy_sneakers() -> Order:
    return checkout.place_async_order(email="buyer@example.com", lines=[checkout.Line("sneakers", 1)])


def counters(product: Product) -> tuple[int, int]:
    product.refresh_from_db()
    return product.reserved, product.sold


def test_an_accepted_order_charged_at_the_provider_is_found_repaired_to_paid_and_then_nothing_is_left(
    provider, products, since
):
    order = make_order(product=products["mug"])
    charge_id = charge_at_provider(order)

    dry = reconcile(since=since)

    (found,) = dry.discrepancies
    assert (found.kind, found.order_id, found.charge_ids, found.repaired) == (
        "charged_not_paid", order.id, (charge_id,), False,
    )  # fmt: skip
    assert (dry.charges, dry.orders) == (1, 1)
    order.refresh_from_db()
    assert order.status == OrderStatus.ACCEPTED  # a dry run changes nothing

    repaired = reconcile(since=since, repair=True)

    assert [(d.kind, d.repaired) for d in repaired.discrepancies] == [("charged_not_paid", True)]
    order.refresh_from_db()
    (witness,) = provider.charges_for(order)  # the repair recorded the one charge, made none
    assert (order.status, order.charge_id) == ("paid", witness["id"]) and order.paid_at is not None
    assert history(order)[-1] == (
        "accepted", "paid", f"reconciled: the provider's books show charge {charge_id} for this order's key",
    )  # fmt: skip
    assert "charged_not_paid 1 (1 repaired)" in repaired.line() and repaired.unrepaired == ()

    again = reconcile(since=since, repair=True)

    assert again.discrepancies == () and (again.charges, again.orders) == (1, 1)
    assert len(history(order)) == 2


def test_a_failed_order_charged_at_the_provider_is_repaired_and_its_released_unit_sold_again(
    provider, sneakers, since, jobs
):
    order = failed(buy_sneakers())
    assert counters(sneakers) == (0, 0)  # failing released the unit
    charge_id = charge_at_provider(order)

    result = reconcile(since=since, repair=True)

    assert [(d.kind, d.charge_ids, d.repaired) for d in result.discrepancies] == [
        ("failed_but_charged", (charge_id,), True)
    ]
    order.refresh_from_db()
    assert (order.status, order.charge_id) == ("paid", provider.charges_for(order)[0]["id"])
    assert history(order)[-1][:2] == ("failed", "paid")
    assert counters(sneakers) == (0, 1)  # sold again, to its buyer


def test_a_failed_order_charged_whose_unit_was_sold_to_someone_else_is_listed_and_left_for_a_person(
    provider, sneakers, since, jobs
):
    order = failed(buy_sneakers())
    other = buy_sneakers()  # the last unit went to another buyer meanwhile, paid for and recorded
    paid_with(other, charge_at_provider(other))
    charge_at_provider(order)
    before = (history(order), counters(sneakers))

    result = reconcile(since=since, repair=True)

    (found,) = result.of_kind("failed_but_charged")
    assert found.order_id == order.id and not found.repaired
    assert "sold to someone else" in found.detail and "a person must refund" in found.detail
    assert result.unrepaired == (found,)
    order.refresh_from_db()
    assert order.status == OrderStatus.FAILED and order.charge_id == ""
    assert (history(order), counters(sneakers)) == before  # nothing changed
    assert len(provider.charges_for(order)) == 1  # and the money is still there to refund


def test_a_paid_order_whose_charge_the_provider_never_made_is_listed_and_not_changed(
    provider, products, since
):
    order = paid_with(make_order(product=products["mug"]), "ch_not_in_the_books")
    before = history(order)

    result = reconcile(since=since, repair=True)

    (found,) = result.discrepancies
    assert (found.kind, found.order_id, found.charge_ids, found.repaired) == (
        "paid_not_charged", order.id, ("ch_not_in_the_books",), False,
    )  # fmt: skip
    assert provider.lookup(order.payment_key) == []  # the witness agrees: no charge for its key
    order.refresh_from_db()
    assert (order.status, order.charge_id, history(order)) == ("paid", "ch_not_in_the_books", before)


def test_a_paid_order_whose_charge_predates_the_window_is_found_by_its_key_and_agrees(provider, products):
    order = make_order(product=products["mug"])
    charge_id = charge_at_provider(order)
    time.sleep(0.05)
    since = timezone.now()  # the charge is before the window, the payment inside it
    paid_with(order, charge_id)

    result = reconcile(since=since)

    assert result.discrepancies == () and (result.charges, result.orders) == (0, 1)


def test_a_paid_order_recorded_with_another_charge_than_the_books_show_is_listed(provider, products, since):
    order = make_order(product=products["mug"])
    charge_id = charge_at_provider(order)
    paid_with(order, "ch_recorded_by_mistake")

    result = reconcile(since=since, repair=True)

    (found,) = result.discrepancies
    assert (found.kind, found.charge_ids, found.repaired) == (
        "paid_other_charge", (charge_id, "ch_recorded_by_mistake"), False,
    )  # fmt: skip
    order.refresh_from_db()
    assert order.charge_id == "ch_recorded_by_mistake"


def test_a_key_that_expired_and_charged_again_is_charged_twice_and_the_first_charge_pays_the_order(
    provider, products, since
):
    provider.configure(key_ttl_seconds=0.3)
    order = make_order(product=products["mug"])
    first = charge_at_provider(order)
    time.sleep(0.4)
    second = charge_at_provider(order)  # the key was forgotten: a second charge, not a replay
    assert [c["id"] for c in provider.lookup(order.payment_key)] == [first, second]

    result = reconcile(since=since, repair=True)

    twice = result.of_kind("charged_twice")
    assert [(d.order_id, d.charge_ids, d.repaired) for d in twice] == [(order.id, (first, second), False)]
    assert "its key expired and charged again" in twice[0].detail
    assert [d.repaired for d in result.of_kind("charged_not_paid")] == [True]
    order.refresh_from_db()
    assert (order.status, order.charge_id) == ("paid", first)
    left = reconcile(since=since).unrepaired  # the extra charge stays for a person to refund
    assert [(d.kind, d.charge_ids) for d in left] == [("charged_twice", (first, second))]


def test_two_keys_charged_for_one_paid_order_are_charged_twice(provider, products, since):
    order = make_order(product=products["mug"])
    first = charge_at_provider(order)
    second = charge_at_provider(order, key=Order.retry_payment_key_for(order.id, 1))
    paid_with(order, first)

    result = reconcile(since=since)

    (found,) = result.discrepancies
    assert (found.kind, found.charge_ids) == ("charged_twice", (first, second))
    assert order.payment_key in found.detail and f"recorded {first}" in found.detail


def test_a_charge_without_metadata_is_matched_to_its_order_by_its_key(provider, products, since):
    order = make_order(product=products["mug"])
    charge_id = charge_at_provider(order, metadata={})

    result = reconcile(since=since)

    assert [(d.kind, d.order_id, d.charge_ids) for d in result.discrepancies] == [
        ("charged_not_paid", order.id, (charge_id,))
    ]


def test_an_order_its_own_attempt_pays_during_the_repair_is_left_paid_with_nothing_to_do(
    provider, products, since, monkeypatch
):
    order = make_order(product=products["mug"])
    charge_id = charge_at_provider(order)
    look_up = reconciliation._look_up  # the last step before the repairs, after the orders were read

    def worker_records_it_meanwhile(orders):
        paid_with(order, charge_id)
        return look_up(orders)

    monkeypatch.setattr(reconciliation, "_look_up", worker_records_it_meanwhile)

    result = reconcile(since=since, repair=True)

    (found,) = result.discrepancies
    assert found.repaired and "paid meanwhile with that charge: nothing to do" in found.detail
    assert [to for _, to, _ in history(order)] == ["accepted", "processing", "paid"]  # one payment


def test_a_charge_naming_no_order_of_ours_is_unknown_and_ignored_when_orders_are_given(
    provider, products, since
):
    ours = make_order(product=products["mug"])
    stranger = charge_at_provider(ours, key="someone-elses-key", metadata={})
    ghost_id = uuid.uuid4()
    ghost = charge_at_provider(ours, key=f"order-{ghost_id}", metadata={"order_id": str(ghost_id)})

    result = reconcile(since=since)

    assert [(d.kind, d.order_id, d.charge_ids) for d in result.discrepancies] == [
        ("unknown_charge", None, (charge_id,)) for charge_id in sorted([stranger, ghost])
    ]
    assert any(f"order {ghost_id}, which we do not have" in d.detail for d in result.discrepancies)

    mine_only = reconcile(since=since, order_ids=[ours.id], repair=True)

    assert mine_only.discrepancies == () and (mine_only.charges, mine_only.orders) == (0, 0)


def test_order_ids_restrict_the_charges_and_orders_examined(provider, products, since):
    mine, other = make_order(product=products["mug"]), make_order(product=products["mug"])
    charge_at_provider(mine)
    charge_at_provider(other)

    result = reconcile(since=since, order_ids=[mine.id], repair=True)

    assert [(d.kind, d.order_id) for d in result.discrepancies] == [("charged_not_paid", mine.id)]
    assert (result.charges, result.orders) == (1, 1)
    other.refresh_from_db()
    assert other.status == OrderStatus.ACCEPTED


def test_a_provider_that_does_not_answer_reconciles_nothing_and_changes_nothing(products, settings):
    settings.PAYMENT_PROVIDER_URL = "http://127.0.0.1:9"  # the discard port: nothing listens there
    order = make_order(product=products["mug"])

    with pytest.raises(LedgerUnavailable):
        reconcile(since=timezone.now() - timedelta(hours=1), repair=True)

    order.refresh_from_db()
    assert order.status == OrderStatus.ACCEPTED and order.events.count() == 1


def test_the_summary_line_counts_every_kind_and_an_unknown_kind_is_refused(provider, since):
    result = reconcile(since=since)

    assert result.line() == (
        "reconciled 0 charges, 0 orders: charged_not_paid 0 (0 repaired), failed_but_charged 0 "
        "(0 repaired), paid_not_charged 0, paid_other_charge 0, charged_twice 0, unknown_charge 0; "
        "0 unrepaired"
    )
    assert all(result.count(kind) == 0 for kind in KINDS)
    with pytest.raises(ValueError):
        result.count("charged_thrice")


# --- the command ---------------------------------------------------------------------------------


def run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("reconcile", *args, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue()
    return 0, out.getvalue()


def test_the_command_lists_what_is_left_with_status_1_and_repairs_to_status_0(provider, products, tmp_path):
    order = make_order(product=products["mug"])
    charge_id = charge_at_provider(order)

    status, out = run("--since", "10m")

    assert status == 1
    summary, line = out.splitlines()
    assert "charged_not_paid 1 (0 repaired)" in summary and summary.endswith("1 unrepaired")
    assert line.startswith(f"charged_not_paid order={order.id} charges={charge_id} NOT repaired: ")

    status, out = run("--since", "10m", "--repair", "--json", str(tmp_path / "result.json"))

    assert status == 0 and "charged_not_paid 1 (1 repaired)" in out and " repaired: " in out
    written = json.loads((tmp_path / "result.json").read_text())
    assert written["counts"]["charged_not_paid"] == written["repaired"]["charged_not_paid"] == 1
    assert written["discrepancies"][0]["order_id"] == str(order.id)
    status, out = run("--since", "10m")
    assert (
        status == 0
        and out.count("\n") == 1
        and out.rstrip().endswith("charged_twice 0, unknown_charge 0; 0 unrepaired")
    )


def test_the_command_takes_an_iso_window_and_refuses_a_bad_one(provider):
    start = (timezone.now() - timedelta(hours=2)).isoformat()

    assert run("--since", start, "--until", timezone.now().isoformat())[0] == 0
    with pytest.raises(CommandError, match="neither a duration"):
        call_command("reconcile", "--since", "yesterday")
    with pytest.raises(CommandError, match="the window is empty"):
        call_command("reconcile", "--since", "1h", "--until", start)


def test_the_command_says_so_with_status_2_when_the_provider_does_not_answer(settings):
    settings.PAYMENT_PROVIDER_URL = "http://127.0.0.1:9"

    status, _ = run("--since", "1h")

    assert status == 2


@pytest.mark.django_db(transaction=True)
def test_manage_py_reconcile_exits_1_while_a_discrepancy_is_left(provider, products):
    charge_at_provider(make_order(product=products["mug"]))

    result = subprocess.run(
        [sys.executable, "manage.py", "reconcile", "--since", "10m"],
        env={**os.environ, "DATABASE_URL": database_url()},
        cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert result.returncode == 1, result.stderr
    assert "charged_not_paid 1 (0 repaired)" in result.stdout
    assert "1 discrepancies left for a person" in result.stderr
