"""The sweeper re-publishes payment jobs that would otherwise never come, and only those."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from orders.models import Order
from orders.recovery import sweep_stuck_orders
from orders.tasks import charge_order_task
from queues.sqs import describe_message, sqs_client
from tests.factories import make_order
from tests.fixtures import at_once, wait_for_status


def queued_order_ids(queue_url: str) -> list[str]:
    """Consume the queue and return the order id of every payment job in it."""
    client = sqs_client()
    ids = []
    while messages := client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            ids.append(describe_message(message["Body"]).split("'")[1])
            client.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return ids


def age(order: Order, **fields) -> Order:
    Order.objects.filter(pk=order.pk).update(**fields)
    order.refresh_from_db()
    return order


def seconds_ago(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


@pytest.mark.django_db
def test_an_order_whose_job_never_got_out_is_published_after_the_grace(products, empty_queue):
    unpublished = age(make_order(product=products["mug"]), enqueued_at=None, updated_at=seconds_ago(60))
    too_fresh = age(make_order(product=products["mug"]), enqueued_at=None)

    result = sweep_stuck_orders()

    assert (result.published, result.unpublished) == (1, 0)
    assert queued_order_ids(empty_queue) == [str(unpublished.id)]
    unpublished.refresh_from_db()
    assert unpublished.enqueued_at is not None
    assert Order.objects.get(pk=too_fresh.pk).enqueued_at is None


@pytest.mark.django_db
def test_an_order_waiting_past_the_requeue_limit_gets_a_fresh_job(products, empty_queue, settings):
    settings.ORDER_REQUEUE_AFTER_SECONDS = 60
    waiting = age(make_order(product=products["mug"]), enqueued_at=seconds_ago(61))
    age(make_order(product=products["mug"]), enqueued_at=seconds_ago(30))

    sweep_stuck_orders()

    assert queued_order_ids(empty_queue) == [str(waiting.id)]


@pytest.mark.django_db
def test_a_long_backlog_whose_jobs_are_all_queued_gets_no_duplicates(products, empty_queue, settings):
    settings.ORDER_REQUEUE_AFTER_SECONDS = 60
    backlog = [age(make_order(product=products["mug"]), enqueued_at=seconds_ago(600)) for _ in range(3)]
    for order in backlog:
        charge_order_task.apply_async((str(order.id),))  # every waiting order still has its job

    result = sweep_stuck_orders()

    assert result.published == 0
    assert sorted(queued_order_ids(empty_queue)) == sorted(str(o.id) for o in backlog)


@pytest.mark.django_db
def test_only_as_many_waiting_orders_as_jobs_are_missing_are_requeued_oldest_first(
    products, empty_queue, settings
):
    settings.ORDER_REQUEUE_AFTER_SECONDS = 60
    oldest, older, newer = (
        age(make_order(product=products["mug"]), enqueued_at=seconds_ago(600), created_at=seconds_ago(age_s))
        for age_s in (900, 800, 700)
    )
    charge_order_task.apply_async((str(newer.id),))  # one of the three jobs is still queued

    sweep_stuck_orders()

    assert sorted(queued_order_ids(empty_queue)) == sorted([str(newer.id), str(oldest.id), str(older.id)])


@pytest.mark.django_db
def test_an_order_held_by_a_dead_worker_is_released_and_published(products, empty_queue):
    held = age(make_order(product=products["mug"], status="processing"), lease_expires_at=seconds_ago(1))
    alive = age(
        make_order(product=products["mug"], status="processing"),
        lease_expires_at=timezone.now() + timedelta(seconds=60),
    )

    result = sweep_stuck_orders()

    assert (result.released, result.published) == (1, 1)
    assert queued_order_ids(empty_queue) == [str(held.id)]
    held.refresh_from_db()
    assert held.status == "accepted"
    assert held.events.last().detail.startswith("lease expired")
    assert Order.objects.get(pk=alive.pk).status == "processing"


@pytest.mark.django_db
def test_finished_orders_are_left_alone(products, empty_queue):
    for status in ("paid", "failed"):
        age(
            make_order(product=products["mug"], status=status), enqueued_at=None, updated_at=seconds_ago(3600)
        )

    result = sweep_stuck_orders()

    assert result.published == 0
    assert queued_order_ids(empty_queue) == []


@pytest.mark.django_db(transaction=True)
def test_sweepers_running_at_once_publish_each_order_once(products, empty_queue):
    due = [
        age(make_order(product=products["mug"]), enqueued_at=None, updated_at=seconds_ago(60))
        for _ in range(20)
    ]

    at_once(sweep_stuck_orders, 4)

    assert sorted(queued_order_ids(empty_queue)) == sorted(str(o.id) for o in due)


def test_the_sweeper_and_a_worker_finish_an_order_whose_job_was_lost(products, worker, provider):
    lost = age(make_order(product=products["mug"]), enqueued_at=None, updated_at=seconds_ago(60))

    call_command("sweep_orders")

    assert wait_for_status(lost, "paid", "failed").status == "paid"
    assert len(provider.charges_for(lost)) == 1
