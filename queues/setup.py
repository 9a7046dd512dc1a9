"""Create the payment queue and its dead-letter queue, and read their depth, with boto3 alone.

Django-free on purpose: `queues.sqs` (local use, `manage.py create_queues`), the deploy tooling
and the load lab share it; deploy/stack.py takes its retention constants (the stack declares the queues).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

DLQ_RETENTION_SECONDS = 14 * 24 * 3600  # SQS's maximum: time to notice and redrive dead letters
QUEUE_RETENTION_SECONDS = 4 * 24 * 3600


def ensure_queue_pair(
    client, *, queue_name: str, dlq_name: str, visibility_timeout: int, max_receive_count: int
) -> dict[str, str]:
    """Create the queue and its DLQ if missing, set their attributes, and return their URLs.

    Idempotent, and it converges: CreateQueue is called with the name alone (SQS refuses a
    CreateQueue whose attributes differ from the existing queue's), then the attributes are set.
    """
    dlq_url = client.create_queue(QueueName=dlq_name)["QueueUrl"]
    client.set_queue_attributes(
        QueueUrl=dlq_url, Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)}
    )
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = client.create_queue(QueueName=queue_name)["QueueUrl"]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
    client.set_queue_attributes(
        QueueUrl=queue_url,
        Attributes={
            "VisibilityTimeout": str(visibility_timeout),
            "MessageRetentionPeriod": str(QUEUE_RETENTION_SECONDS),
            "RedrivePolicy": json.dumps(redrive),
        },
    )
    return {"queue": queue_url, "dlq": dlq_url}


@dataclass(frozen=True)
class QueueDepth:
    visible: int  # waiting for a worker
    in_flight: int  # received by a worker, not yet deleted
    delayed: int  # retries waiting out their countdown

    @property
    def total(self) -> int:
        return self.visible + self.in_flight + self.delayed


def read_depth(client, queue_url: str) -> QueueDepth:
    """Read a queue's approximate depth, as CloudWatch and autoscaling see it."""
    attributes = client.get_queue_attributes(
        QueueUrl=queue_url,
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
