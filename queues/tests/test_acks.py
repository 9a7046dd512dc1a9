"""Workers ack in DeleteMessageBatch requests (queues.sqs_transport.AckBatcher), and every ack lands."""

import time

import pytest

from orders import checkout
from orders.models import OrderEvent, OrderStatus
from queues.sqs import queue_depth
from queues.sqs_transport import ACK_BATCH, ACK_FLUSH_SECONDS, AckBatcher
from tests.fixtures import wait_for_status


class RecordingClient:
    """Stands in for the boto3 client handed to the batcher: records the batches it is asked to delete."""

    def __init__(self):
        self.batches: list[tuple[str, list[str]]] = []

    def delete_message_batch(self, *, QueueUrl, Entries):
        self.batches.append((QueueUrl, [entry["ReceiptHandle"] for entry in Entries]))
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries]}


def test_acks_are_deleted_ten_at_a_time_and_the_rest_when_closed():
    client = RecordingClient()
    batcher = AckBatcher(lambda queue: client)

    for index in range(25):
        batcher.add("payments", "http://sqs/q", f"handle-{index}")
    batcher.close()

    assert [len(handles) for _, handles in client.batches] == [10, 10, 5]
    assert [h for _, handles in client.batches for h in handles] == [f"handle-{i}" for i in range(25)]
    assert ACK_BATCH == 10


def test_a_lone_ack_is_deleted_within_the_flush_interval():
    client = RecordingClient()
    batcher = AckBatcher(lambda queue: client)

    batcher.add("payments", "http://sqs/q", "only")
    deadline = time.monotonic() + ACK_FLUSH_SECONDS + 0.5
    while not client.batches and time.monotonic() < deadline:
        time.sleep(0.02)

    assert client.batches == [("http://sqs/q", ["only"])]  # without waiting for nine more, or a close
    batcher.close()


@pytest.mark.django_db(transaction=True)
def test_a_worker_deletes_every_job_it_finished_and_none_comes_back(
    products, provider, start_worker, payment_queue
):
    provider.configure(latency_seconds=0.05, concurrency=0)
    start_worker(concurrency=8)
    orders = [
        checkout.place_async_order(email="a@example.com", lines=[checkout.Line("mug", 1)]) for _ in range(30)
    ]

    for order in orders:
        assert wait_for_status(order, OrderStatus.PAID).status == OrderStatus.PAID
    deadline = time.monotonic() + 5
    while queue_depth().total and time.monotonic() < deadline:
        time.sleep(0.1)

    assert queue_depth().total == 0
    claims = OrderEvent.objects.filter(order__in=orders, to_status=OrderStatus.PROCESSING).count()
    assert claims == 30  # no job was delivered, claimed and charged a second time
    assert provider.stats()["replays"] == 0
