"""Browser checkout in real headless Chromium: the storefront, the API behind it, a real worker."""

import os
import shutil
from datetime import timedelta

import pytest
from django.utils import timezone
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from orders import checkout, checkout_queue, transitions
from orders.models import Order
from shop.models import Product
from tests.factories import make_order

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def chromium():
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not (binary and driver_path):
        message = "Chromium and chromedriver are needed (Debian: apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--window-size=1200,900",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    yield driver
    driver.quit()


def test_a_shopper_checks_out_and_watches_the_order_get_paid(
    chromium, live_server, products, worker, provider
):
    chromium.get(live_server.url + "/")
    chromium.find_element(By.CSS_SELECTOR, "input[data-sku=mug]").clear()
    chromium.find_element(By.CSS_SELECTOR, "input[data-sku=mug]").send_keys("2")
    chromium.find_element(By.NAME, "email").send_keys("shopper@example.com")
    chromium.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    WebDriverWait(chromium, 10).until(ec.url_contains("/orders/"))
    WebDriverWait(chromium, 30).until(
        ec.text_to_be_present_in_element_attribute((By.ID, "status"), "data-status", "paid")
    )
    steps = chromium.find_elements(By.CSS_SELECTOR, "#steps li.done time")
    assert len(steps) == 3 and all(step.text for step in steps)  # accepted, processing, paid: with times
    events = chromium.find_element(By.ID, "events").text
    assert "new → accepted" in events
    assert "accepted → processing" in events
    assert "processing → paid" in events
    order = Order.objects.get(pk=chromium.current_url.rsplit("/", 1)[-1])
    assert (order.email, order.status, str(order.total)) == ("shopper@example.com", "paid", "48.00")


def test_a_bad_email_is_explained_on_the_page_and_places_no_order(chromium, live_server, products):
    chromium.get(live_server.url + "/")
    chromium.find_element(By.CSS_SELECTOR, "input[data-sku=mug]").clear()
    chromium.find_element(By.CSS_SELECTOR, "input[data-sku=mug]").send_keys("1")
    chromium.find_element(By.NAME, "email").send_keys("not-an-email")
    chromium.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    WebDriverWait(chromium, 10).until(ec.text_to_be_present_in_element((By.ID, "message"), "Email"))
    assert Order.objects.count() == 0
    # What the customer typed is kept, to correct rather than retype.
    assert chromium.find_element(By.NAME, "email").get_attribute("value") == "not-an-email"
    assert chromium.find_element(By.CSS_SELECTOR, "input[data-sku=mug]").get_attribute("value") == "1"
    assert chromium.find_element(By.CSS_SELECTOR, "button[type=submit]").is_enabled()


def test_an_empty_basket_is_explained_on_the_page(chromium, live_server, products):
    chromium.get(live_server.url + "/")
    chromium.find_element(By.NAME, "email").send_keys("shopper@example.com")
    chromium.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    WebDriverWait(chromium, 10).until(
        ec.text_to_be_present_in_element((By.ID, "message"), "at least one item")
    )
    assert Order.objects.count() == 0


def fill_basket(chromium, sku: str, quantity: int, email: str = "shopper@example.com") -> None:
    box = chromium.find_element(By.CSS_SELECTOR, f"input[data-sku={sku}]")
    box.clear()
    box.send_keys(str(quantity))
    chromium.find_element(By.NAME, "email").send_keys(email)


def test_a_double_click_on_place_order_places_one_order(chromium, live_server, products, worker, provider):
    chromium.get(live_server.url + "/")
    fill_basket(chromium, "mug", 1)

    ActionChains(chromium).double_click(
        chromium.find_element(By.CSS_SELECTOR, "button[type=submit]")
    ).perform()

    WebDriverWait(chromium, 10).until(ec.url_contains("/orders/"))
    WebDriverWait(chromium, 30).until(
        ec.text_to_be_present_in_element_attribute((By.ID, "status"), "data-status", "paid")
    )
    assert Order.objects.count() == 1
    assert len(provider.charges_for(Order.objects.get())) == 1


def test_reloading_the_page_while_the_order_is_placed_still_places_one_order(
    chromium, live_server, products, provider
):
    provider.reset(latency_seconds=2)  # the sync checkout waits this long for the charge
    chromium.get(live_server.url + "/")
    fill_basket(chromium, "mug", 1)
    chromium.find_element(By.CSS_SELECTOR, "input[name=mode][value=sync]").click()
    chromium.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(chromium, 5).until(lambda _: Order.objects.exists())  # the first request is running

    chromium.refresh()  # the page resumes the same attempt, with the same Idempotency-Key

    WebDriverWait(chromium, 20).until(ec.url_contains("/orders/"))
    WebDriverWait(chromium, 20).until(
        ec.text_to_be_present_in_element_attribute((By.ID, "status"), "data-status", "paid")
    )
    assert Order.objects.count() == 1
    assert provider.stats()["charges"] == 1


def test_a_sold_out_product_shows_sold_out_and_cannot_be_chosen(chromium, live_server, products):
    Product.objects.filter(sku="sneakers").update(stock=3, sold=3)

    chromium.get(live_server.url + "/")

    assert chromium.find_element(By.CSS_SELECTOR, "td.stock[data-sku=sneakers]").text == "Sold out"
    assert not chromium.find_element(By.CSS_SELECTOR, "input[data-sku=sneakers]").is_enabled()


def test_a_product_selling_out_while_the_customer_chooses_is_explained_and_the_form_kept(
    chromium, live_server, products
):
    Product.objects.filter(sku="sneakers").update(stock=2)
    chromium.get(live_server.url + "/")
    assert chromium.find_element(By.CSS_SELECTOR, "td.stock[data-sku=sneakers]").text == "2 left"
    fill_basket(chromium, "sneakers", 2)
    checkout.place_async_order(email="fast@example.com", lines=[checkout.Line("sneakers", 2)])  # faster

    chromium.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    WebDriverWait(chromium, 10).until(ec.text_to_be_present_in_element((By.ID, "message"), "sold out"))
    assert (
        chromium.find_element(By.ID, "message").text
        == "Sorry, Sneakers is sold out. Remove it to order the rest."
    )
    assert chromium.find_element(By.CSS_SELECTOR, "td.stock[data-sku=sneakers]").text == "Sold out"
    assert chromium.find_element(By.NAME, "email").get_attribute("value") == "shopper@example.com"
    assert Order.objects.count() == 1  # the faster customer's


def test_a_failed_orders_page_gives_the_customer_the_plain_reason(chromium, live_server, products):
    order = make_order(product=products["mug"], status="processing")
    transitions.mark_failed(
        order.id, token=0, code="unavailable",
        reason="payment provider unavailable after 5 attempts; its books show no charge for this order",
    )  # fmt: skip

    chromium.get(f"{live_server.url}/orders/{order.id}")

    WebDriverWait(chromium, 10).until(
        ec.text_to_be_present_in_element_attribute((By.ID, "status"), "data-status", "failed")
    )
    assert chromium.find_element(By.ID, "status").text == "failed"
    assert chromium.find_element(By.ID, "outcome").text == (
        "Your order was not paid. The payment provider could not be reached; nothing was charged."
    )
    assert chromium.find_element(By.CSS_SELECTOR, "#steps li.failed").text.startswith("Failed")


def test_a_drop_counts_down_from_the_servers_clock_and_opens_the_product_at_the_second(
    chromium, live_server, products
):
    starts_at = timezone.now() + timedelta(seconds=4)
    Product.objects.filter(sku="sneakers").update(sale_starts_at=starts_at, stock=5)
    chromium.get(live_server.url + "/")
    quantity = chromium.find_element(By.CSS_SELECTOR, "input[data-sku=sneakers]")
    cell = chromium.find_element(By.CSS_SELECTOR, "td.stock[data-sku=sneakers]")

    WebDriverWait(chromium, 3).until(lambda _: cell.text.startswith("On sale in 0:00:0"))
    assert not quantity.is_enabled()
    WebDriverWait(chromium, 10).until(lambda _: quantity.is_enabled())  # no reload
    assert timezone.now() >= starts_at - timedelta(seconds=1)  # opened at the drop, not before
    assert cell.text == "5 left"
    quantity.clear()
    quantity.send_keys("1")
    chromium.find_element(By.NAME, "email").send_keys("early@example.com")
    chromium.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    WebDriverWait(chromium, 10).until(ec.url_contains("/orders/"))
    assert Product.objects.get(sku="sneakers").reserved == 1


def test_a_checkout_before_the_drop_is_explained_and_places_nothing(chromium, live_server, products):
    chromium.get(live_server.url + "/")
    chromium.find_element(By.CSS_SELECTOR, "input[data-sku=sneakers]").clear()
    chromium.find_element(By.CSS_SELECTOR, "input[data-sku=sneakers]").send_keys("1")
    # Staff schedule the drop after the page was loaded: the shop's answer says so.
    Product.objects.filter(sku="sneakers").update(sale_starts_at=timezone.now() + timedelta(minutes=5))
    chromium.find_element(By.NAME, "email").send_keys("eager@example.com")
    chromium.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    WebDriverWait(chromium, 10).until(ec.text_to_be_present_in_element((By.ID, "message"), "not on sale yet"))
    WebDriverWait(chromium, 3).until(
        ec.text_to_be_present_in_element((By.CSS_SELECTOR, "td.stock[data-sku=sneakers]"), "On sale in 0:0")
    )
    assert Order.objects.count() == 0


def test_the_order_page_says_its_place_in_line_and_when_it_should_be_paid(chromium, live_server, products):
    ahead = [make_order(product=products["mug"]) for _ in range(3)]
    mine = make_order(product=products["mug"])
    # One paid 52 s ago: the shop pays 1/52 orders a second, and the ETA is 3 × 52 s ("about 3
    # minutes") for the 7 s the payment stays in the last minute's window, however slow the page.
    for order in ahead[:1]:
        paid_at = timezone.now() - timedelta(seconds=52)
        Order.objects.filter(pk=order.pk).update(status="paid", paid_at=paid_at)

    chromium.get(f"{live_server.url}/orders/{mine.id}")

    place = chromium.find_element(By.ID, "place")
    WebDriverWait(chromium, 10).until(lambda _: place.get_attribute("data-position") == "2")
    assert place.text == "2 orders are ahead of yours; expected to be paid in about 3 minutes."


def test_a_sync_checkout_the_provider_has_no_room_for_waits_in_line_and_retries_on_its_own(
    chromium, live_server, products, provider
):
    # Two checkouts hold the provider's slot and the one on deck (orders/checkout_queue.py).
    held = [checkout_queue.admit(f"before-you-{n}") for n in range(checkout_queue.limit())]
    try:
        chromium.get(live_server.url + "/")
        fill_basket(chromium, "mug", 1)
        chromium.find_element(By.CSS_SELECTOR, "input[name=mode][value=sync]").click()
        chromium.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

        WebDriverWait(chromium, 10).until(
            ec.text_to_be_present_in_element((By.ID, "message"), "You are number 1 in line; trying again in")
        )
        assert Order.objects.count() == 0  # waiting in line places nothing
        assert not chromium.find_element(By.CSS_SELECTOR, "button[type=submit]").is_enabled()
    finally:
        for lease in held:
            checkout_queue.release(lease)  # their charges end: the page's next retry gets in

    WebDriverWait(chromium, 15).until(ec.url_contains("/orders/"))
    WebDriverWait(chromium, 10).until(
        ec.text_to_be_present_in_element_attribute((By.ID, "status"), "data-status", "paid")
    )
    order = Order.objects.get()
    assert (order.mode, order.status) == ("sync", "paid")
    assert len(provider.charges_for(order)) == 1
