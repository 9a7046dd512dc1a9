"""The reconciliation page: staff see the dry run, those who may change orders repair, audited."""

import re

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.test import Client

from orders.models import Order
from payments import gateway
from tests.factories import make_order

pytestmark = pytest.mark.django_db

PAGE = "/admin/operations/reconciliation/"


@pytest.fixture
def charged(provider, products) -> tuple[Order, str]:
    """An accepted order the provider charged (the worker's answer was lost): the order, its charge."""
    order = make_order(product=products["mug"])
    result = gateway.charge(
        gateway.ChargeRequest(
            amount_minor=order.amount_minor,
            currency=order.currency,
            idempotency_key=order.payment_key,
            description=f"Order {order.id}",
            metadata={"order_id": str(order.id)},
        ),
        timeout=5,
    )
    return order, result.charge_id


@pytest.fixture
def staff_client(client):
    """Staff who may look at orders but not change them."""
    user = User.objects.create_user("clerk", password="pw-clerk-123", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_order"))
    client.force_login(user)
    return client


def status(order: Order) -> str:
    order.refresh_from_db()
    return order.status


def test_people_who_are_not_staff_are_sent_to_the_login_and_nothing_is_repaired(client, charged):
    order, _ = charged
    client.force_login(User.objects.create_user("shopper", password="pw-shopper-123"))

    for response in (client.get(PAGE), client.post(PAGE, {"hours": "1"})):
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert status(order) == "accepted" and not LogEntry.objects.exists()


def test_staff_see_the_dry_run_a_table_per_kind_but_cannot_repair_without_the_permission(
    staff_client, charged
):
    order, charge_id = charged

    page = staff_client.get(PAGE).content.decode()

    assert 'id="count-charged_not_paid">1<' in page and 'id="count-unknown_charge">0<' in page
    assert page.count('class="ops-discrepancies"') == 6
    assert str(order.id) in page and charge_id in page and "Dry run: nothing was changed" in page
    assert 'id="repair"' not in page

    assert staff_client.post(PAGE, {"hours": "24"}).status_code == 403
    assert status(order) == "accepted" and not LogEntry.objects.exists()


def test_a_bad_window_falls_back_to_24_hours_on_the_dry_run(staff_client, charged):
    page = staff_client.get(PAGE, {"hours": "forever"}).content.decode()

    assert "showing 24" in page and 'value="24"' in page and 'id="count-charged_not_paid">1<' in page


def test_the_repair_needs_the_csrf_token_then_pays_the_order_and_is_audited(admin_user, charged, provider):
    order, charge_id = charged
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin_user)
    page = browser.get(PAGE, {"hours": "2"}).content.decode()
    assert 'id="repair"' in page and 'value="Repair 1 order(s)"' in page
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None

    assert browser.post(PAGE, {"hours": "2"}).status_code == 403  # no token: refused
    assert status(order) == "accepted"

    done = browser.post(PAGE, {"hours": "2", "csrfmiddlewaretoken": token.group(1)}).content.decode()

    assert "Repaired 1 order(s). Nothing is left." in done and "Repair run" in done
    (witness,) = provider.charges_for(order)  # still the one charge: a repair never charges
    order.refresh_from_db()
    assert witness["id"] == charge_id and (order.status, order.charge_id) == ("paid", charge_id)
    on_order = LogEntry.objects.get(object_id=str(order.id))
    assert on_order.user == admin_user and on_order.change_message.startswith("reconcile: paid")
    run = LogEntry.objects.get(object_repr="reconciliation")
    assert run.user == admin_user and "charged_not_paid 1 (1 repaired)" in run.change_message
    assert 'id="count-charged_not_paid">1<' in done  # the result: listed, and marked repaired
    assert browser.get(PAGE).content.decode().count('id="count-charged_not_paid">0<') == 1


def test_the_page_says_so_when_the_provider_does_not_answer(admin_client, settings):
    settings.PAYMENT_PROVIDER_URL = "http://127.0.0.1:9"  # the discard port: nothing listens there

    page = admin_client.get(PAGE).content.decode()

    assert "The reconciliation did not run" in page and "ops-discrepancies" not in page


def test_the_console_links_the_reconciliation_page(admin_client):
    assert f'href="{PAGE}"' in admin_client.get("/admin/operations/").content.decode()
