"""The Lambda consumer on SQS events built from real jobs the shop published to the local SQS server."""

import uuid
from types import SimpleNamespace

import pytest

from orders import lambda_handler
from orders.models import Order
from orders.publishing import publish_payment_jobs
from queues.sqs import sqs_client
from tests.factories import make_order

CONTEXT = SimpleNamespace(
    function_name="flashsale-payments", memory_limit_in_mb=512, aws_request_id="req-1",
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:flashsale-payments",
)  # fmt: skip


def received_records(queue_url: str, count: int) -> list[dict]:
    """Receive `count` messages and shape them as the SQS event source hands them to Lambda."""
    messages: list[dict] = []
    client = sqs_client()
    while len(messages) < count:
        got = client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        messages += got.get("Messages", [])
    # The event source mapping deletes what the handler reports done; here nothing would, and a
    # received message would stay in flight for the visibility timeout under the next test's feet.
    for message in messages:
        client.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return [record(m["MessageId"], m["ReceiptHandle"], m["Body"], m["MD5OfBody"]) for m in messages]


def record(message_id: str, receipt: str, body: str, md5: str = "") -> dict:
    return {
        "messageId": message_id, "receiptHandle": receipt, "body": body, "md5OfBody": md5,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0",
                       "SenderId": "local", "ApproximateFirstReceiveTimestamp": "0"},
        "messageAttributes": {}, "eventSource": "aws:sqs", "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:flashsale-payments",
    }  # fmt: skip


def published(products, empty_queue, count: int = 1) -> tuple[list[Order], list[dict]]:
    orders = [make_order(product=products["mug"]) for _ in range(count)]
    assert publish_payment_jobs([o.id for o in orders]) == 0
    return orders, received_records(empty_queue, count)


def test_a_published_job_is_charged_and_its_record_succeeds(products, empty_queue, provider):
    (order,), records = published(products, empty_queue)

    response = lambda_handler.handler({"Records": records}, CONTEXT)

    assert response == {"batchItemFailures": []}
    order.refresh_from_db()
    assert order.status == "paid"
    assert len(provider.charges_for(order)) == 1


def test_a_declined_charge_fails_the_order_and_is_not_retried(products, empty_queue, provider):
    provider.configure(decline_rate=1.0)
    (order,), records = published(products, empty_queue)

    response = lambda_handler.handler({"Records": records}, CONTEXT)

    assert response == {"batchItemFailures": []}  # final: deleted, not redelivered
    order.refresh_from_db()
    assert order.status == "failed"


def test_a_duplicate_delivery_is_charged_once(products, empty_queue, provider):
    (order,), records = published(products, empty_queue)
    duplicate = {**records[0], "messageId": str(uuid.uuid4())}

    first = lambda_handler.handler({"Records": [records[0], duplicate]}, CONTEXT)
    again = lambda_handler.handler({"Records": records}, CONTEXT)

    assert first == again == {"batchItemFailures": []}
    order.refresh_from_db()
    assert order.status == "paid"
    assert len(provider.charges_for(order)) == 1  # the provider's ledger: one charge


def test_a_poison_message_is_a_batch_item_failure_and_the_rest_of_the_batch_is_charged(
    products, empty_queue, provider
):
    orders, records = published(products, empty_queue, count=2)
    poison = record("poison-1", "r-poison", "this is not a celery message")

    response = lambda_handler.handler({"Records": [records[0], poison, records[1]]}, CONTEXT)

    assert response == {"batchItemFailures": [{"itemIdentifier": "poison-1"}]}
    assert {o.status for o in Order.objects.filter(pk__in=[o.id for o in orders])} == {"paid"}


def test_a_provider_outage_hands_the_job_back_to_sqs(products, empty_queue, provider):
    provider.configure(error_rate=1.0)
    (order,), records = published(products, empty_queue)

    response = lambda_handler.handler({"Records": records}, CONTEXT)

    assert response == {"batchItemFailures": [{"itemIdentifier": records[0]["messageId"]}]}
    order.refresh_from_db()
    assert order.status == "accepted"  # released: the redelivery (or the sweeper) charges it


@pytest.mark.unit
def test_secrets_named_in_lambda_secrets_are_read_into_the_environment(monkeypatch):
    fetched = {"arn:key": "s3cret", "arn:db": {"password": "pw", "username": "flashsale"}}
    monkeypatch.setattr(lambda_handler.parameters, "get_secret", lambda arn, transform=None: fetched[arn])
    environ = {
        "LAMBDA_SECRETS": '{"DJANGO_SECRET_KEY": {"arn": "arn:key"}, '
        '"PGPASSWORD": {"arn": "arn:db", "field": "password"}}'
    }

    lambda_handler.load_secrets(environ)

    assert environ["DJANGO_SECRET_KEY"] == "s3cret"
    assert environ["PGPASSWORD"] == "pw"
