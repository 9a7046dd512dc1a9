"""Staff see stock, reserved and sold in the admin, set stock there, and every change is recorded."""

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import call_command

from orders import checkout
from shop.catalogue import DEMO_STOCK
from shop.models import Product, StockChange


def change_form(product: Product, **changes) -> dict:
    data = {"sku": product.sku, "name": product.name, "price": str(product.price), "active": "on"}
    data["stock"] = ""
    if product.stock is not None:
        data["stock"] = str(product.stock)
    data.update({"stock_changes-TOTAL_FORMS": "0", "stock_changes-INITIAL_FORMS": "0"})
    data.update({k: str(v) for k, v in changes.items()})
    return data


def buy(sku: str, quantity: int) -> None:
    checkout.place_async_order(email="buyer@example.com", lines=[checkout.Line(sku, quantity)])


@pytest.mark.django_db
def test_the_product_list_shows_stock_reserved_sold_and_left(admin_client, products):
    Product.objects.filter(sku="sneakers").update(stock=10)
    buy("sneakers", 3)

    page = admin_client.get("/admin/shop/product/")

    rows = {p.sku: p for p in page.context["cl"].result_list}
    assert (rows["sneakers"].stock, rows["sneakers"].reserved, rows["sneakers"].sold) == (10, 3, 0)
    assert "unlimited" in page.content.decode()


@pytest.mark.django_db
def test_staff_setting_stock_is_recorded_with_who_from_what_and_to_what(admin_client, admin_user, products):
    sneakers = products["sneakers"]

    url = f"/admin/shop/product/{sneakers.pk}/change/"
    response = admin_client.post(url, change_form(sneakers, stock=50))

    assert response.status_code == 302
    assert Product.objects.get(pk=sneakers.pk).stock == 50
    change = StockChange.objects.get(product=sneakers)
    assert (change.old_stock, change.new_stock, change.changed_by) == (None, 50, admin_user)
    assert LogEntry.objects.filter(object_id=str(sneakers.pk), user=admin_user).exists()


@pytest.mark.django_db
def test_stock_set_in_the_product_list_is_recorded_too(admin_client, admin_user, products):
    mug = products["mug"]
    data = {
        "form-TOTAL_FORMS": "1", "form-INITIAL_FORMS": "1", "form-0-id": str(mug.pk),
        "form-0-price": str(mug.price), "form-0-active": "on", "form-0-stock": "25", "_save": "Save",
    }  # fmt: skip

    response = admin_client.post("/admin/shop/product/?q=mug", data)

    assert response.status_code == 302
    change = StockChange.objects.get(product=mug)
    assert (change.old_stock, change.new_stock, change.changed_by) == (None, 25, admin_user)


@pytest.mark.django_db
def test_stock_cannot_be_set_below_the_units_already_reserved_and_sold(admin_client, products):
    Product.objects.filter(sku="sneakers").update(stock=10)
    buy("sneakers", 6)
    sneakers = Product.objects.get(sku="sneakers")

    response = admin_client.post(f"/admin/shop/product/{sneakers.pk}/change/", change_form(sneakers, stock=5))

    assert response.status_code == 200  # the form again, with the error
    assert "Stock cannot be less than the units already reserved and sold (6)." in response.content.decode()
    assert (Product.objects.get(pk=sneakers.pk).stock, StockChange.objects.count()) == (10, 0)


@pytest.mark.django_db
def test_saving_a_product_page_does_not_undo_checkouts_made_while_it_was_open(admin_client, products):
    Product.objects.filter(sku="sneakers").update(stock=10)
    sneakers = Product.objects.get(sku="sneakers")
    form = change_form(sneakers, price="79.00")  # staff open the page: 0 reserved
    buy("sneakers", 4)  # meanwhile, a checkout

    admin_client.post(f"/admin/shop/product/{sneakers.pk}/change/", form)

    saved = Product.objects.get(pk=sneakers.pk)
    assert (str(saved.price), saved.stock, saved.reserved) == ("79.00", 10, 4)


@pytest.mark.django_db
def test_the_demo_catalogue_has_a_limited_flash_sale_product_whose_stock_reseeding_keeps(products):
    call_command("seed_catalogue")
    Product.objects.filter(sku="flash-sneakers").update(stock=7)

    call_command("seed_catalogue")

    assert DEMO_STOCK["flash-sneakers"] == 100
    assert Product.objects.get(sku="flash-sneakers").stock == 7
    assert Product.objects.get(sku="travel-mug").stock is None


@pytest.mark.django_db
def test_the_storefront_shows_what_is_left_and_disables_a_sold_out_product(client, products):
    Product.objects.filter(sku="sneakers").update(stock=5, sold=5)
    Product.objects.filter(sku="hoodie").update(stock=8, reserved=1)

    page = client.get("/").content.decode()

    assert "7 left" in page
    assert "Sold out" in page
    assert 'data-sku="sneakers" data-name="Sneakers" aria-label="Quantity of Sneakers" disabled' in page
