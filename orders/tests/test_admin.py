"""The admin shows orders and their status history, and lets nobody edit status by hand."""

import pytest

from orders import transitions
from tests.factories import make_order


@pytest.fixture
def order(products):
    order = make_order(product=products["mug"], quantity=3)
    transitions.claim(order.id, lease_seconds=60, detail="payment started")
    transitions.mark_paid(order.id, token=1, charge_id="ch_admin")
    return order


@pytest.mark.django_db
def test_the_order_list_filters_by_status_and_mode(admin_client, order):
    page = admin_client.get("/admin/orders/order/", {"status__exact": "paid", "mode__exact": "async"})

    assert page.status_code == 200
    assert str(order.id) in page.content.decode()
    assert (
        str(order.id)
        not in admin_client.get("/admin/orders/order/", {"status__exact": "failed"}).content.decode()
    )


@pytest.mark.django_db
@pytest.mark.parametrize("term", ["buyer@example", "{id}"])
def test_orders_can_be_found_by_email_or_id(admin_client, order, term):
    page = admin_client.get("/admin/orders/order/", {"q": term.format(id=order.id)})

    assert [o.id for o in page.context["cl"].result_list] == [order.id]


@pytest.mark.django_db
def test_the_order_page_shows_items_and_the_history_from_accepted_to_paid(admin_client, order):
    page = admin_client.get(f"/admin/orders/order/{order.id}/change/").content.decode()

    assert "Status history" in page
    for text in ("mug", "Accepted", "Processing", "Paid", "payment started", "charged (ch_admin)"):
        assert text in page
    assert 'name="status"' not in page  # read-only: no form field to change it


@pytest.mark.django_db
def test_orders_cannot_be_added_or_deleted_in_the_admin(admin_client, order):
    assert admin_client.get("/admin/orders/order/add/").status_code == 403
    assert admin_client.get(f"/admin/orders/order/{order.id}/delete/").status_code == 403
