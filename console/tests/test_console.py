"""The operations page: staff only, its figures from the database and SQS, and its audited actions."""

import csv
import io
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from orders import transitions
from orders.models import Order
from orders.selectors import oldest_waiting_order_age_seconds
from queues.sqs import queue_depth, sqs_client
from tests.factories import make_order

pytestmark = pytest.mark.django_db

PAGE = "/admin/operations/"
JSON = "/admin/operations/snapshot.json"


def paid(product, minutes_ago: float) -> Order:
    order = make_order(product=product)
    transitions.claim(order.id, lease_seconds=60)
    transitions.mark_paid(order.id, token=1, charge_id="ch_x")
    Order.objects.filter(pk=order.id).update(paid_at=timezone.now() - timedelta(minutes=minutes_ago))
    return order


@pytest.fixture
def sale(products):
    """Two waiting orders (the oldest 90 s old), three paid (two this minute), two failed, one unpublished."""
    mug = products["mug"]
    oldest = make_order(product=mug)
    Order.objects.filter(pk=oldest.pk).update(created_at=timezone.now() - timedelta(seconds=90))
    make_order(product=mug)
    Order.objects.update(enqueued_at=timezone.now())  # their jobs went out...
    make_order(product=mug)  # ...this one's did not (enqueued_at null): the sweeper's to publish
    for minutes in (0, 0, 30):
        paid(mug, minutes)
    for reason in ("Your card was declined.", "Your card was declined."):
        order = make_order(product=mug, status="processing")
        transitions.mark_failed(order.id, token=0, reason=reason, code="declined")
    return oldest


@pytest.fixture
def staff_client(client):
    user = User.objects.create_user("clerk", password="pw-clerk-123", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_order"))
    client.force_login(user)
    return client


def test_the_oldest_waiting_order_age_counts_from_its_creation_and_is_none_without_one(sale):
    assert 89 <= oldest_waiting_order_age_seconds() < 100
    Order.objects.filter(status="accepted").update(status="paid")
    assert oldest_waiting_order_age_seconds() is None


def test_the_json_figures_count_the_sale_and_say_when_sqs_does_not_answer(admin_client, sale, settings):
    settings.SQS_ENDPOINT_URL = "http://127.0.0.1:9"  # the discard port: nothing listens there
    settings.SQS_QUEUE_URL = f"{settings.SQS_ENDPOINT_URL}/123456789012/flashsale-payments"
    settings.SQS_DLQ_URL = f"{settings.SQS_ENDPOINT_URL}/123456789012/flashsale-payments-dlq"

    figures = admin_client.get(JSON).json()

    orders = figures["orders"]
    assert orders["by_status"] == {"accepted": 3, "processing": 0, "paid": 3, "failed": 2}
    assert 89 <= orders["oldest_waiting_seconds"] < 100
    assert orders["unpublished"] == 1
    per_minute = [m["paid"] for m in orders["paid_per_minute"]]
    assert len(per_minute) == 60 and per_minute[-1] == 2 and sum(per_minute) == 3
    assert orders["failures_by_reason"] == [{"reason": "Your card was declined.", "orders": 2}]
    # SQS down: the page says so instead of hanging or failing.
    assert figures["queue"] is None and figures["queue_error"] == "SQS did not answer"


def test_the_page_shows_the_figures_a_chart_and_the_actions_to_staff_who_may_act(admin_client, sale):
    page = admin_client.get(PAGE).content.decode()

    assert 'id="unpublished">1<' in page
    assert page.count("<rect ") == 60  # a bar a minute, drawn by the server
    assert "Your card was declined." in page
    assert "Re-publish…" in page and "Redrive the DLQ…" in page
    assert "<script>" not in page  # CSP: script-src 'self', no inline script
    assert 'href="/admin/operations/"' in admin_client.get("/admin/").content.decode()  # linked


def test_staff_without_the_permission_to_change_orders_see_the_figures_but_cannot_act(staff_client, sale):
    assert staff_client.get(PAGE).status_code == 200
    assert "Re-publish…" not in staff_client.get(PAGE).content.decode()

    response = staff_client.post("/admin/operations/republish/", {"order": str(sale.id)})

    assert response.status_code == 403
    assert sale.events.count() == 1


def test_people_who_are_not_staff_are_sent_to_the_login_and_change_nothing(client, sale):
    client.force_login(User.objects.create_user("shopper", password="pw-shopper-123"))

    for response in (
        client.get(PAGE),
        client.get(JSON),
        client.post("/admin/operations/republish/", {"order": str(sale.id)}),
        client.post("/admin/operations/redrive/"),
    ):
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert sale.events.count() == 1 and not LogEntry.objects.exists()


def test_republish_asks_first_then_acts_and_is_audited(admin_client, admin_user, sale, jobs):
    confirm = admin_client.get("/admin/operations/republish/", {"order": str(sale.id)})
    assert confirm.status_code == 200 and "Yes, re-publish it" in confirm.content.decode()
    assert jobs.published == []  # asking changed nothing

    response = admin_client.post("/admin/operations/republish/", {"order": str(sale.id)}, follow=True)

    assert jobs.published == [sale.id]
    assert "Its payment job is on the queue." in response.content.decode()
    entry = LogEntry.objects.get()
    assert (entry.user, entry.object_id) == (admin_user, str(sale.id))
    assert entry.change_message.startswith("republish: payment job re-published")


@pytest.mark.parametrize("order", ["not-a-uuid", "", "6d9b3c1e-0000-4000-8000-000000000000"])
def test_an_action_on_a_bad_or_unknown_order_id_changes_nothing(admin_client, sale, jobs, order):
    response = admin_client.post("/admin/operations/retry/", {"order": order}, follow=True)

    assert "Give the id (a UUID) of an existing order. Nothing was changed." in response.content.decode()
    assert jobs.published == [] and not LogEntry.objects.exists()


def test_retrying_an_order_that_did_not_fail_is_refused_with_a_message(admin_client, sale, jobs):
    response = admin_client.post("/admin/operations/retry/", {"order": str(sale.id)}, follow=True)

    assert "is accepted, not failed: it cannot be retried. Nothing was changed." in response.content.decode()
    assert jobs.published == [] and not LogEntry.objects.exists()


def test_a_get_never_acts(admin_client, sale, jobs):
    admin_client.get("/admin/operations/republish/", {"order": str(sale.id)})
    admin_client.get("/admin/operations/redrive/")

    assert jobs.published == [] and not LogEntry.objects.exists()


def test_bulk_retry_on_the_order_list_confirms_then_retries_the_failed_and_refuses_the_rest(
    admin_client, sale, jobs
):
    failed = list(Order.objects.filter(status="failed").values_list("pk", flat=True))
    selection = {"action": "retry_selected", "_selected_action": [*map(str, failed), str(sale.id)]}

    confirm = admin_client.post("/admin/orders/order/", selection)
    assert "Retry 3 order(s)?" in confirm.content.decode()
    assert Order.objects.filter(status="failed").count() == 2  # asking changed nothing

    done = admin_client.post(
        "/admin/orders/order/", {**selection, "post": "yes"}, follow=True
    ).content.decode()

    assert "Retry: 2 order(s) done." in done and "is accepted, not failed" in done
    assert Order.objects.filter(pk__in=failed, status="accepted").count() == 2
    assert sorted(jobs.published) == sorted(failed)
    assert LogEntry.objects.filter(change_message__startswith="retry:").count() == 2


def test_the_csv_export_streams_the_current_filter_and_is_audited(admin_client, sale):
    response = admin_client.get("/admin/orders/order/export.csv", {"status__exact": "failed"})

    assert response.streaming and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 2 and {row["status"] for row in rows} == {"failed"}
    assert rows[0]["failure_code"] == "declined" and rows[0]["email"] == "buyer@example.com"
    assert LogEntry.objects.get().change_message == "exported 2 orders as CSV (status__exact=failed)"
    changelist = admin_client.get("/admin/orders/order/", {"status__exact": "failed"}).content.decode()
    assert 'href="/admin/orders/order/export.csv?status__exact=failed"' in changelist


# --- with the SQS server: the queue's figures and the DLQ redrive -----------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_page_reads_the_queue_and_redrives_the_dlq_by_send_then_delete(
    admin_client, admin_user, empty_queue
):
    client = sqs_client()
    while messages := client.receive_message(QueueUrl=settings.SQS_DLQ_URL, MaxNumberOfMessages=10).get(
        "Messages"
    ):
        for message in messages:
            client.delete_message(QueueUrl=settings.SQS_DLQ_URL, ReceiptHandle=message["ReceiptHandle"])
    for body in ("dead one", "dead two", "dead three"):
        client.send_message(QueueUrl=settings.SQS_DLQ_URL, MessageBody=body)
    client.send_message(QueueUrl=empty_queue, MessageBody="waiting one")

    queue = admin_client.get(JSON).json()["queue"]
    assert (queue["waiting"], queue["dead_lettered"]) == (1, 3)

    response = admin_client.post("/admin/operations/redrive/", follow=True)

    # The local server has no StartMessageMoveTask (fauxqs 1.9.2 answers InvalidAction): moved here.
    assert "Moved 3 dead-lettered message(s) back to the payment queue." in response.content.decode()
    assert queue_depth(settings.SQS_DLQ_URL).total == 0
    assert queue_depth(empty_queue).visible == 4
    entry = LogEntry.objects.get()
    assert entry.user == admin_user and entry.object_repr == "dead-letter queue"
