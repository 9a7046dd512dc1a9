"""The SQS queues behind Celery: creation (local use) and inspection."""

from __future__ import annotations

import json
from dataclasses import dataclass

import boto3
from django.conf import settings


def sqs_client():
    return boto3.client(
        "sqs", region_name=settings.SQS_REGION, endpoint_url=settings.SQS_ENDPOINT_URL or None
    )


@dataclass(frozen=True)
class QueueDepth:
    visible: int  # waiting for a worker
    in_flight: int  # received by a worker, not yet deleted
    delayed: int  # retries waiting out their countdown

    @property
    def total(self) -> int:
        return self.visible + self.in_flight + self.delayed


def ensure_queues() -> dict[str, str]:
    """Create the payment queue and its dead-letter queue if missing; return their URLs.

    Idempotent: SQS CreateQueue with the same attributes returns the existing queue.
    """
    client = sqs_client()
    dlq_url = client.create_queue(
        QueueName=settings.SQS_DLQ_NAME,
        Attributes={"MessageRetentionPeriod": str(14 * 24 * 3600)},
    )["QueueUrl"]
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = client.create_queue(
        QueueName=settings.SQS_QUEUE_NAME,
        Attributes={
            "VisibilityTimeout": str(settings.SQS_VISIBILITY_TIMEOUT),
            "MessageRetentionPeriod": str(4 * 24 * 3600),
            "ReceiveMessageWaitTimeSeconds": "0",
        },
    )["QueueUrl"]
    # Set separately: CreateQueue on an existing queue refuses changed attributes.
    client.set_queue_attributes(
        QueueUrl=queue_url,
        Attributes={
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(settings.SQS_MAX_RECEIVE_COUNT)}
            ),
            "VisibilityTimeout": str(settings.SQS_VISIBILITY_TIMEOUT),
        },
    )
    return {"queue": queue_url, "dlq": dlq_url}


def queue_depth(queue_url: str | None = None) -> QueueDepth:
    attributes = sqs_client().get_queue_attributes(
        QueueUrl=queue_url or settings.SQS_QUEUE_URL,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return QueueDepth(
        visible=int(attributes["ApproximateNumberOfMessages"]),
        in_flight=int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        delayed=int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
    )
