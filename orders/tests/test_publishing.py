"""Payment jobs go out in SendMessageBatch requests of up to 10, each a Celery task a worker can run."""

import base64
import json
import uuid

import pytest
from botocore.client import BaseClient
from botocore.exceptions import EndpointConnectionError
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders import sqs_jobs
from orders.models import Order
from orders.publishing import publish_payment_jobs
from orders.tasks import charge_order_task
from queues.sqs_transport import collect_sends
from tests.factories import make_order

from .test_sweeper import queued_order_ids


@pytest.fixture
def sqs_operations(monkeypatch) -> list[str]:
    """Every AWS operation boto3 sends from now on, by name (the witness for request counts)."""
    operations: list[str] = []
    real = BaseClient._make_api_call

    def recording(self, operation_name, api_params):
        operations.append(operation_name)
        return real(self, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    return operations


def test_twenty_five_jobs_take_three_batch_requests_and_each_names_its_order(
    products, empty_queue, sqs_operations
):
    orders = [make_order(product=products["mug"]) for _ in range(25)]
    before = timezone.now()

    with CaptureQueriesContext(connection) as queries:
        refused = publish_payment_jobs([o.id for o in orders])

    assert refused == 0
    assert sqs_operations.count("SendMessageBatch") == 3
    assert "SendMessage" not in sqs_operations  # none went out one by one
    assert sorted(queued_order_ids(empty_queue)) == sorted(str(o.id) for o in orders)
    # Stamped once SQS took them all, with one UPDATE after the last batch.
    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["UPDATE"]
    assert not Order.objects.filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=before)).exists()


def test_a_batch_the_broker_refuses_leaves_every_order_null_for_the_relay(
    products, payment_queue, monkeypatch
):
    orders = [make_order(product=products["mug"]) for _ in range(3)]
    # One stamped by its caller before publishing, as the operations console does.
    Order.objects.filter(pk=orders[0].pk).update(enqueued_at=timezone.now())

    def unreachable(self, operation_name, api_params):
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")

    monkeypatch.setattr(BaseClient, "_make_api_call", unreachable)

    assert publish_payment_jobs([o.id for o in orders]) == 3
    assert set(Order.objects.filter(enqueued_at__isnull=True).values_list("id", flat=True)) == {
        o.id for o in orders
    }


def test_publishing_nothing_sends_nothing(sqs_operations):
    assert sqs_jobs.SqsPaymentJobs().publish([]) == []
    assert sqs_operations == []


def test_preparing_the_publisher_asks_nothing_of_sqs_and_publishes_nothing(empty_queue, sqs_operations):
    # The relay prepares it before its first pass (orders/relay.py): it must not send a job, and
    # must not wait on a broker that is down.
    sqs_jobs.SqsPaymentJobs().prepare()

    assert sqs_operations == []
    assert queued_order_ids(empty_queue) == []


def _decoded(message_body: str) -> tuple[dict, list]:
    envelope = json.loads(base64.b64decode(message_body))
    return envelope, json.loads(base64.b64decode(envelope.pop("body")))


def test_a_stamped_job_is_celerys_own_message_but_for_its_fresh_ids(payment_queue):
    order_id = str(uuid.uuid4())
    with collect_sends() as sends:
        charge_order_task.apply_async((order_id,), retry=False, declare=[])
    celery_envelope, celery_body = _decoded(sends[0].arguments["MessageBody"])

    template = sqs_jobs.JobTemplate()
    first, second = template.body(order_id), template.body(order_id)
    envelope, body = _decoded(first)

    assert body == celery_body  # the args, kwargs and embed, exactly
    ids = {("headers", "id"), ("headers", "root_id"), ("properties", "correlation_id"),
           ("properties", "delivery_tag")}  # fmt: skip
    for part, key in ids:
        assert uuid.UUID(envelope[part].pop(key)) and celery_envelope[part].pop(key)
    celery_envelope["headers"].pop("origin"), envelope["headers"].pop("origin")  # the process's name
    assert envelope == celery_envelope
    assert _decoded(second)[0]["headers"]["id"] != json.loads(base64.b64decode(first))["headers"]["id"]
    assert {k for k in sends[0].arguments if k != "QueueUrl"} == {"MessageBody", *template.entry}
