"""The SQS queues behind Celery: creation (local use) and inspection."""

from __future__ import annotations

import base64
import functools
import json
from dataclasses import dataclass

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from django.conf import settings

from queues.setup import QueueDepth, ensure_queue_pair, read_depth


def sqs_client(*, timeout: float | None = None):
    """A boto3 SQS client; with `timeout`, one that gives up fast (probes and pages must not hang)."""
    if timeout is not None:
        return _fast_client(settings.SQS_REGION, settings.SQS_ENDPOINT_URL or None, timeout)
    return boto3.client(
        "sqs", region_name=settings.SQS_REGION, endpoint_url=settings.SQS_ENDPOINT_URL or None
    )


@functools.lru_cache(maxsize=8)
def _fast_client(region: str, endpoint_url: str | None, timeout: float):
    # Made once per process and reused (boto3 clients are thread-safe, and making one costs tens
    # of ms of CPU): a readiness probe every few seconds and a page that refreshes itself call this often.
    config = Config(connect_timeout=timeout, read_timeout=timeout, retries={"total_max_attempts": 1})
    return boto3.client("sqs", region_name=region, endpoint_url=endpoint_url, config=config)


def ping(*, timeout: float) -> None:
    """The payment queue answers GetQueueAttributes within `timeout`, or this raises (`GET /readyz`)."""
    sqs_client(timeout=timeout).get_queue_attributes(
        QueueUrl=settings.SQS_QUEUE_URL, AttributeNames=["ApproximateNumberOfMessages"]
    )


def ensure_queues() -> dict[str, str]:
    """Create the payment queue and its dead-letter queue if missing; return their URLs.

    Idempotent and converging; the boto3 logic lives in `queues.setup` so that deploy
    tooling without Django settings runs the very same steps.
    """
    return ensure_queue_pair(
        sqs_client(),
        queue_name=settings.SQS_QUEUE_NAME,
        dlq_name=settings.SQS_DLQ_NAME,
        visibility_timeout=settings.SQS_VISIBILITY_TIMEOUT,
        max_receive_count=settings.SQS_MAX_RECEIVE_COUNT,
    )


def queue_depth(queue_url: str | None = None, *, timeout: float | None = None) -> QueueDepth:
    return read_depth(sqs_client(timeout=timeout), queue_url or settings.SQS_QUEUE_URL)


def payment_queue_depths(*, timeout: float | None = None) -> tuple[QueueDepth, QueueDepth]:
    """The payment queue's depth and its dead-letter queue's, read with one client."""
    client = sqs_client(timeout=timeout)
    return read_depth(client, settings.SQS_QUEUE_URL), read_depth(client, settings.SQS_DLQ_URL)


class UnreadableMessage(ValueError):
    """A message body that is not a Celery task message (protocol 2, JSON, base64 as kombu sends it)."""


def task_call(body: str) -> tuple[str, list, dict]:
    """Decode kombu's SQS envelope into the task's name, args and kwargs (Celery message protocol 2)."""
    try:
        envelope = json.loads(base64.b64decode(body, validate=True))
        task = envelope["headers"]["task"]
        inner = envelope["body"]
        if envelope.get("properties", {}).get("body_encoding") == "base64":
            inner = base64.b64decode(inner, validate=True)
        args, kwargs, _embed = json.loads(inner)
    except (ValueError, KeyError, TypeError) as exc:
        raise UnreadableMessage(f"not a Celery task message: {body[:80]!r}") from exc
    if not isinstance(task, str) or not isinstance(args, list) or not isinstance(kwargs, dict):
        raise UnreadableMessage(f"not a Celery task message: {body[:80]!r}")
    return task, args, kwargs


def describe_message(body: str) -> str:
    """A one-line summary of a queued message: the Celery task and its arguments, or the raw text."""
    try:
        envelope = json.loads(base64.b64decode(body, validate=True))
        headers = envelope["headers"]
        return f"{headers['task']}{headers.get('argsrepr', '')}"
    except (ValueError, KeyError, TypeError):
        return f"unreadable message: {body[:80]!r}"


def peek(queue_url: str, limit: int = 10) -> list[str]:
    """Describe up to `limit` messages without consuming them (they reappear at once)."""
    client = sqs_client()
    messages = client.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=min(limit, 10), VisibilityTimeout=0
    ).get("Messages", [])
    return [describe_message(m["Body"]) for m in messages]


def redrive(source_url: str, target_url: str, limit: int = 10_000) -> int:
    """Move messages from `source_url` (the DLQ) back to `target_url`, each sent before it is deleted."""
    client = sqs_client()
    moved = 0
    while moved < limit:
        messages = client.receive_message(
            QueueUrl=source_url,
            MaxNumberOfMessages=min(10, limit - moved),
            MessageAttributeNames=["All"],
            VisibilityTimeout=30,
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            attributes = message.get("MessageAttributes") or {}
            client.send_message(
                QueueUrl=target_url, MessageBody=message["Body"], MessageAttributes=attributes
            )
            client.delete_message(QueueUrl=source_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return moved


# What an SQS server answers for an action it does not implement (fauxqs 1.9: InvalidAction).
UNSUPPORTED = {"InvalidAction", "UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation"}


@dataclass(frozen=True)
class Redrive:
    method: str  # "native": SQS moves them (StartMessageMoveTask); "moved": moved here, one by one
    moved: int | None  # messages moved here; None for a native task (SQS moves them in the background)
    task_handle: str = ""


def redrive_dead_letters(limit: int = 1000) -> Redrive:
    """Move the DLQ's messages back to the payment queue once their cause is fixed.

    SQS's own StartMessageMoveTask where the server has it (AWS: it moves them back to the queue
    they came from, at its own pace, and survives our process). Elsewhere (the local server has no
    such task) receive → send to the payment queue → delete, one message at a time, never deleting
    one that was not sent: a failure mid-way leaves it in the DLQ, visible again after 30 s. At most
    `limit` messages per call, so that a click answers in seconds.
    """
    client = sqs_client()
    dlq_arn = client.get_queue_attributes(QueueUrl=settings.SQS_DLQ_URL, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    try:
        task = client.start_message_move_task(SourceArn=dlq_arn)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in UNSUPPORTED:
            raise
    else:
        return Redrive("native", None, task.get("TaskHandle", ""))
    return Redrive("moved", redrive(settings.SQS_DLQ_URL, settings.SQS_QUEUE_URL, limit=limit))
