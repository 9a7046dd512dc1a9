"""The SQS queues, against the SQS emulator: creation converges, the DLQ can be read and re-driven."""

import json

from django.conf import settings
from django.core.management import call_command

from queues.sqs import ensure_queues, queue_depth, sqs_client


def attributes(url: str) -> dict:
    return sqs_client().get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def drain(url: str) -> None:
    client = sqs_client()
    while messages := client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_creating_the_queues_again_restores_changed_attributes(payment_queue):
    sqs_client().set_queue_attributes(QueueUrl=payment_queue, Attributes={"VisibilityTimeout": "1"})

    urls = ensure_queues()

    main = attributes(urls["queue"])
    assert main["VisibilityTimeout"] == str(settings.SQS_VISIBILITY_TIMEOUT)
    redrive = json.loads(main["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == attributes(urls["dlq"])["QueueArn"]
    assert int(redrive["maxReceiveCount"]) == settings.SQS_MAX_RECEIVE_COUNT


def test_the_dlq_command_shows_and_redrives_dead_letters(payment_queue, empty_queue, capsys):
    client = sqs_client()
    drain(settings.SQS_DLQ_URL)
    for body in ("not a celery message", "another one"):
        client.send_message(QueueUrl=settings.SQS_DLQ_URL, MessageBody=body)

    call_command("dlq", "--show", "5")
    shown = capsys.readouterr().out
    call_command("dlq", "--redrive")
    moved = capsys.readouterr().out

    assert "dead-letter queue: 2 waiting" in shown
    assert shown.count("unreadable message") == 2
    assert "moved 2 messages back" in moved
    assert queue_depth(settings.SQS_DLQ_URL).total == 0
    assert queue_depth(payment_queue).visible == 2
    drain(payment_queue)
