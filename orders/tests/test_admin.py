"""The admin shows orders and their status history, lets nobody edit status by hand, and exports CSV
a spreadsheet opens as data."""

import csv
import io
import json

import pytest

from orders import transitions
from orders.admin import csv_cell
from orders.models import Order
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


# --- the CSV export: a cell a spreadsheet would run as a formula is written as text -------------------


def exported(admin_client) -> list[dict[str, str]]:
    response = admin_client.get("/admin/orders/order/export.csv")
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.mark.django_db
def test_an_email_the_checkout_accepts_is_exported_as_text_not_as_a_formula(
    admin_client, client, products, published_jobs
):
    # Django's EmailValidator allows = | + - in the local part: anyone can place this order.
    formula = "=cmd|calc@example.com"
    body = {"email": formula, "items": [{"sku": "mug", "quantity": 1}]}
    response = client.post("/api/orders/async", json.dumps(body), content_type="application/json")
    assert response.status_code == 202

    (row,) = exported(admin_client)

    assert row["email"] == "'=cmd|calc@example.com"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "text",
    ['=HYPERLINK("http://x.example")', "+SUM(1,2)", "-2+3", "@SUM(1)", "\t=1+1", "\r=1+1"],
    ids=["equals", "plus", "minus", "at", "tab", "carriage-return"],
)
def test_every_text_cell_that_starts_like_a_formula_gets_a_leading_quote(admin_client, products, text):
    order = make_order(product=products["mug"], status="failed")
    # Written directly: the checkout's email validation refuses some of these, the provider's text not.
    Order.objects.filter(pk=order.pk).update(email=f"{text}@example.com", failure_reason=text)

    (row,) = exported(admin_client)

    assert row["email"] == f"'{text}@example.com"
    assert row["failure_reason"] == f"'{text}"


@pytest.mark.django_db
def test_ordinary_cells_are_exported_as_they_are(admin_client, products):
    order = make_order(product=products["mug"])

    (row,) = exported(admin_client)

    assert (row["id"], row["email"], row["failure_reason"]) == (str(order.id), "buyer@example.com", "")
    assert row["total"] == "24.00"


@pytest.mark.parametrize("value", [None, 0, 24, "", "buyer@example.com", "a=b", "x-1"])
def test_a_value_that_does_not_start_like_a_formula_is_left_alone(value):
    assert csv_cell(value) == value
