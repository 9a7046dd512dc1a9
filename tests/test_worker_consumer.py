"""The worker's consumer (queues/worker_consumer.py) on the local SQS server: poison logged, dead-lettered."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Iterator

import pytest
from django.conf import settings

from config.celery_app import app
from orders import checkout
from orders.models import OrderStatus
from queues.sqs import sqs_client
from queues.sqs_transport import collect_sends
from tests.fixtures import wait_for_status

CHARGE_TASK = "orders.charge_order"
# Seconds SQS hides a received message here: five receives take seconds, not the production minutes.
VISIBILITY_SECONDS = 2


def kombu_envelope(task: str) -> dict:
    """The envelope kombu's SQS transport sends for a call of `task` (recorded by our transport, not sent)."""
    with collect_sends() as sends:
        app.send_task(task, args=[str(uuid.uuid4())])
    (send,) = sends
    return json.loads(base64.b64decode(send.arguments["MessageBody"]))


def sqs_body(envelope: dict) -> str:
    return base64.b64encode(json.dumps(envelope).encode()).decode()


def poison_bodies() -> dict[str, str]:
    """Message bodies no worker can run, by what is wrong with them."""
    undecodable = kombu_envelope(CHARGE_TASK)
    undecodable["body"] = base64.b64encode(b"{not json").decode()
    without_id = kombu_envelope(CHARGE_TASK)
    del without_id["headers"]["id"]
    return {
        "not JSON": "{not json",
        "binary": base64.b64encode(b"\x00\xff binary").decode(),
        "JSON but not a task": base64.b64encode(json.dumps({"hello": "world"}).encode()).decode(),
        "a task whose body does not decode": sqs_body(undecodable),  # Celery acked it
        "a task without an id": sqs_body(without_id),  # Celery's consumer raised KeyError: the worker stopped
        "an unregistered task": sqs_body(kombu_envelope("orders.no_such_task")),
    }


@pytest.fixture
def short_visibility(payment_queue: str) -> Iterator[str]:
    client = sqs_client()
    client.set_queue_attributes(
        QueueUrl=payment_queue, Attributes={"VisibilityTimeout": str(VISIBILITY_SECONDS)}
    )
    try:
        yield payment_queue
    finally:
        client.set_queue_attributes(
            QueueUrl=payment_queue, Attributes={"VisibilityTimeout": str(settings.SQS_VISIBILITY_TIMEOUT)}
        )


def take_dead_letters(message_ids: set[str], timeout: float) -> set[str]:
    """Receive and delete DLQ messages until all of `message_ids` came, or the timeout; return theirs."""
    client = sqs_client()
    found: set[str] = set()
    deadline = time.monotonic() + timeout
    while not message_ids <= found and time.monotonic() < deadline:
        got = client.receive_message(QueueUrl=settings.SQS_DLQ_URL, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in got.get("Messages", []):
            found.add(message["MessageId"])
            client.delete_message(QueueUrl=settings.SQS_DLQ_URL, ReceiptHandle=message["ReceiptHandle"])
    return found & message_ids


def logged_receives(log: str, message_id: str) -> list[int]:
    """The receive counts of the ERROR lines that name `message_id` as a poison message."""
    pattern = re.compile(rf"\[error\s*\] poison message {re.escape(message_id)} \(receive (\d+)\)")
    return [int(match.group(1)) for match in pattern.finditer(log)]


@pytest.mark.django_db(transaction=True)
def test_poison_messages_are_logged_by_id_and_dead_lettered_while_a_healthy_order_is_charged(
    products, provider, short_visibility, start_worker
):
    client = sqs_client()
    sent = {
        client.send_message(QueueUrl=short_visibility, MessageBody=body)["MessageId"]: kind
        for kind, body in poison_bodies().items()
    }
    worker = start_worker()

    order = checkout.place_async_order(email="a@example.com", lines=[checkout.Line("mug", 1)])

    assert wait_for_status(order, OrderStatus.PAID).status == OrderStatus.PAID
    assert len(provider.charges_for(order)) == 1
    dead = take_dead_letters(set(sent), timeout=60)
    assert sorted(sent[i] for i in set(sent) - dead) == [], "poison lost instead of dead-lettered"
    log = worker.log_path.read_text()
    every_receive = list(range(1, settings.SQS_MAX_RECEIVE_COUNT + 1))
    logged = {kind: logged_receives(log, message_id) for message_id, kind in sent.items()}
    assert logged == dict.fromkeys(sent.values(), every_receive)
    assert worker.alive()
