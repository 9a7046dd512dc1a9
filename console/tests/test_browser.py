"""The operations page in real headless Chromium: log in, read the figures, watch them refresh, act."""

import pytest
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from orders.models import Order
from queues.sqs import queue_depth
from shop.tests.test_browser import chromium  # noqa: F401 - the shared headless Chromium fixture
from tests.factories import make_order

pytestmark = pytest.mark.browser


def text(browser, element_id: str) -> str:
    return browser.find_element(By.ID, element_id).text


def test_an_operator_logs_in_reads_the_figures_and_republishes_a_stuck_order(
    chromium,  # noqa: F811
    live_server,
    products,
    empty_queue,
):
    User.objects.create_superuser("operator", "op@example.com", "pw-operator-123")
    stuck = make_order(product=products["mug"])
    for _ in range(2):
        make_order(product=products["mug"], status="paid")

    chromium.get(live_server.url + "/admin/")
    chromium.find_element(By.NAME, "username").send_keys("operator")
    chromium.find_element(By.NAME, "password").send_keys("pw-operator-123")
    chromium.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    # The login posts and redirects: wait for the index page rather than racing its navigation.
    WebDriverWait(chromium, 10).until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, "#operations-link caption a"))
    ).click()  # linked from the index

    WebDriverWait(chromium, 10).until(ec.presence_of_element_located((By.ID, "snapshot")))
    assert text(chromium, "waiting") == "0"  # the real SQS queue, empty
    assert text(chromium, "dead-lettered").isdigit()
    assert text(chromium, "oldest").endswith(" s")
    status = {
        cell.get_attribute("data-status"): cell.text
        for cell in chromium.find_elements(By.CSS_SELECTOR, "td[data-status]")
    }
    assert (status["accepted"], status["paid"]) == ("1", "2")
    assert len(chromium.find_elements(By.CSS_SELECTOR, "svg.ops-chart rect")) == 60

    # The figures refresh by themselves (console.js, allowed by the CSP): a new waiting order shows.
    make_order(product=products["mug"])
    WebDriverWait(chromium, 15).until(
        ec.text_to_be_present_in_element((By.CSS_SELECTOR, "td[data-status=accepted]"), "2")
    )

    chromium.find_element(By.ID, "republish-order").send_keys(str(stuck.id))
    chromium.find_element(By.XPATH, "//button[text()='Re-publish…']").click()
    WebDriverWait(chromium, 10).until(ec.presence_of_element_located((By.ID, "confirm")))
    assert Order.objects.get(pk=stuck.id).events.count() == 1  # nothing before the confirmation
    chromium.find_element(By.ID, "confirm").click()

    WebDriverWait(chromium, 10).until(
        ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".messagelist"), "on the queue")
    )
    assert str(stuck.id) in chromium.current_url  # the order's own admin page, its history below
    assert "payment job re-published" in chromium.find_element(By.ID, "events-group").text
    assert queue_depth(settings.SQS_QUEUE_URL).visible == 1
    assert LogEntry.objects.get().user.username == "operator"
