"""Browser checkout in real headless Chromium: the storefront, the API behind it, a real worker."""

import os
import shutil

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from orders.models import Order

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


def test_an_empty_basket_is_explained_on_the_page(chromium, live_server, products):
    chromium.get(live_server.url + "/")
    chromium.find_element(By.NAME, "email").send_keys("shopper@example.com")
    chromium.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    WebDriverWait(chromium, 10).until(
        ec.text_to_be_present_in_element((By.ID, "message"), "at least one item")
    )
    assert Order.objects.count() == 0
