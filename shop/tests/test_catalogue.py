import pytest
from django.core.management import call_command

from shop.catalogue import DEMO_PRODUCTS
from shop.models import Product


@pytest.mark.django_db
def test_seeding_twice_leaves_one_active_copy_of_each_demo_product():
    call_command("seed_catalogue")
    Product.objects.filter(sku=DEMO_PRODUCTS[0][0]).update(active=False, price="1.00")

    call_command("seed_catalogue")

    assert Product.objects.count() == len(DEMO_PRODUCTS)
    restored = Product.objects.get(sku=DEMO_PRODUCTS[0][0])
    assert (restored.active, restored.price) == (True, DEMO_PRODUCTS[0][2])


@pytest.mark.django_db
def test_the_storefront_lists_active_products_only(client, products):
    page = client.get("/").content.decode()

    assert 'data-sku="mug"' in page
    assert 'data-sku="retired"' not in page
