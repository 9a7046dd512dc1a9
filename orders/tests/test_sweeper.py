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


def published(order: Order, *, placed_s: float, published_s: float) -> Order:
    """An order placed `placed_s` ago whose job SQS last took `published_s` ago."""
    return age(
        order,
        created_at=seconds_ago(placed_s),
        updated_at=seconds_ago(placed_s),
        enqueued_at=seconds_ago(published_s),
    )


@pytest.mark.django_db
def test_an_order_whose_job_never_got_out_is_published_after_the_grace_not_before(
    products, empty_queue, settings
):
    settings.SWEEP_GRACE_SECONDS = 10
    placed = timezone.now() - timedelta(seconds=11)
    unpublished = age(make_order(product=products["mug"]), created_at=placed, updated_at=placed)
    too_fresh = age(make_order(product=products["mug"]), updated_at=seconds_ago(9))  # in an outbox, maybe

    result = sweep_stuck_orders()

    assert (result.published, result.unpublished) == (1, 0)
    assert queued_order_ids(empty_queue) == [str(unpublished.id)]
    unpublished.refresh_from_db()
    assert unpublished.enqueued_at is not None  # stamped once SQS took the job
    assert Order.objects.get(pk=too_fresh.pk).enqueued_at is None


@pytest.mark.django_db
def test_an_order_sqs_refused_stays_null_and_is_tried_again_a_grace_later(products, jobs, settings):
    settings.SWEEP_GRACE_SECONDS = 10
    order = age(make_order(product=products["mug"]), updated_at=seconds_ago(60))
    jobs.accept = lambda order_id: False  # SQS is down

    assert sweep_stuck_orders().unpublished == 1
    assert Order.objects.get(pk=order.pk).enqueued_at is None
    assert sweep_stuck_orders().published == 0  # taken a moment ago: not again within the grace

    jobs.accept = lambda order_id: True  # SQS is back
    age(order, updated_at=seconds_ago(11))
    assert sweep_stuck_orders().published == 1
    assert jobs.published == [order.id]
    assert Order.objects.get(pk=order.pk).enqueued_at is not None


@pytest.mark.django_db
def test_an_order_waiting_past_the_requeue_limit_gets_a_fresh_job(products, empty_queue, settings):
    settings.ORDER_REQUEUE_AFTER_SECONDS = 60
    waiting = published(make_order(product=products["mug"]), placed_s=61, published_s=61)
    published(make_order(product=products["mug"]), placed_s=30, published_s=30)

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
def test_only_as_many_orders_as_jobs_are_missing_are_requeued_those_published_longest_ago_first(
    products, empty_queue, settings
):
    settings.ORDER_REQUEUE_AFTER_SECONDS = 60
    mug = products["mug"]
    # Placed first, and its job published again 90 s ago: that job is queued.
    early = published(make_order(product=mug), placed_s=900, published_s=90)
    # Published before SQS lost its messages: their jobs are gone.
    lost_first = published(make_order(product=mug), placed_s=800, published_s=700)
    lost_later = published(make_order(product=mug), placed_s=700, published_s=650)
    # Published after the loss: queued.
    after = published(make_order(product=mug), placed_s=600, published_s=600)
    for order in (early, after):
        charge_order_task.apply_async((str(order.id),))

    result = sweep_stuck_orders()  # 4 published, 2 queued: 2 missing

    assert result.published == 2
    assert sorted(queued_order_ids(empty_queue)) == sorted(
        str(o.id) for o in (early, after, lost_first, lost_later)
    )  # by created_at it took `early` and `lost_first`, and left `lost_later` waiting
    for order in (lost_first, lost_later):
        order.refresh_from_db()
        assert order.enqueued_at > seconds_ago(5)  # published now: the last to be taken next time


@pytest.mark.django_db
def test_orders_still_in_a_web_outbox_are_not_counted_as_jobs_sqs_lost(products, empty_queue, settings):
    settings.ORDER_REQUEUE_AFTER_SECONDS = 60
    backlog = [
        published(make_order(product=products["mug"]), placed_s=600, published_s=600) for _ in range(3)
    ]
    for order in backlog:
        charge_order_task.apply_async((str(order.id),))  # every published job is still queued
    for _ in range(2):
        make_order(product=products["mug"])  # just placed: null, their ids in a web's outbox

    result = sweep_stuck_orders()

    assert result.published == 0  # counting them as missing re-published two of the backlog
    assert sorted(queued_order_ids(empty_queue)) == sorted(str(o.id) for o in backlog)


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
