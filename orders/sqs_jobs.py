"""The payment-jobs port on Celery and SQS: the only order module that knows about a broker.

Jobs are Celery tasks (`orders.tasks.charge_order_task`), published as kombu would publish them,
but up to 10 in one SendMessageBatch (queues.sqs_transport.collect_sends): one request per batch
instead of one per order, ten times fewer billed SQS requests. Celery builds one job per process;
the rest are stamped from it (`JobTemplate`).
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import uuid
from collections.abc import Sequence

from botocore.exceptions import BotoCoreError, ClientError

from queues.sqs import payment_queue_depths, queue_depth
from queues.sqs_transport import collect_sends

from .jobs import JobsDepth, JobsUnavailable
from .tasks import charge_order_task

log = logging.getLogger(__name__)

ENTRY_FIELDS = ("MessageBody", "DelaySeconds", "MessageAttributes", "MessageGroupId")


class SqsPaymentJobs:
    def publish(self, order_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
        if not order_ids:
            return []
        try:
            template = _template()
            entries = [
                {"Id": str(index), "MessageBody": template.body(str(order_id)), **template.entry}
                for index, order_id in enumerate(order_ids)
            ]
            response = template.client.send_message_batch(QueueUrl=template.queue_url, Entries=entries)
        except Exception as exc:  # whatever the broker raised, the orders are safe in the database
            log.warning(
                "could not enqueue payment of %d order(s) (%r); they stay null to be published again",
                len(order_ids),
                exc,
                extra={"order_ids": [str(order_id) for order_id in order_ids]},  # at most 10
            )
            return list(order_ids)
        refused = [order_ids[int(failure["Id"])] for failure in response.get("Failed", [])]
        if refused:
            log.warning(
                "SQS refused %d of %d payment jobs; they stay null to be published again",
                len(refused),
                len(order_ids),
                extra={"order_ids": [str(order_id) for order_id in refused]},
            )
        return refused

    def prepare(self) -> None:
        # Celery builds the job's template: its producer, kombu's SQS channel, the boto3 client and
        # the queue's URL, without a request to SQS, so it also works, and returns at once, while
        # SQS is down.
        _template()

    def waiting(self) -> int:
        try:
            return queue_depth().total
        except (BotoCoreError, ClientError) as exc:
            raise JobsUnavailable(str(exc)) from exc

    def depth(self) -> JobsDepth:
        try:
            main, dlq = payment_queue_depths()
        except (BotoCoreError, ClientError) as exc:
            raise JobsUnavailable(str(exc)) from exc
        return JobsDepth(
            waiting=main.visible + main.delayed, in_flight=main.in_flight, dead_lettered=dlq.total
        )


class JobTemplate:
    """The SQS message of `charge_order_task` as Celery builds it, built once and stamped per order.

    Celery spends more CPU on every message (its configuration lookups, kombu's producer) than
    sending it costs (docs/flash-sale-path.md, first pass). The message of one order
    differs from another's only in the order id (args, argsrepr) and four fresh ids (the task's
    id, its root and correlation ids, kombu's delivery tag), so Celery builds one prototype per
    process (`collect_sends`: recorded, never sent) and `body` writes those fields into a copy.
    A test holds the result equal to Celery's own message for the same order, ids aside, and the
    workers decode it with Celery's protocol 2 as any other; with Celery's protocol or this task's
    options changed, the prototype changes with them.
    """

    PROTOTYPE = str(uuid.UUID(int=0))

    def __init__(self) -> None:
        with collect_sends() as sends:
            charge_order_task.apply_async((self.PROTOTYPE,), retry=False, declare=[])
        (send,) = sends
        self.client, self.queue_url = send.client, send.arguments["QueueUrl"]
        self.entry = {k: v for k, v in send.arguments.items() if k in ENTRY_FIELDS and k != "MessageBody"}
        self.envelope = json.loads(base64.b64decode(send.arguments["MessageBody"]))
        args, *self.rest = json.loads(base64.b64decode(self.envelope["body"]))
        headers, properties = self.envelope["headers"], self.envelope["properties"]
        # What `body` rewrites must be what Celery wrote for the prototype, or the copy is not faithful.
        if (
            args != [self.PROTOTYPE]
            or headers["argsrepr"] != repr((self.PROTOTYPE,))
            or not headers["id"] == headers["root_id"] == properties["correlation_id"]
            or self.envelope["properties"].get("body_encoding") != "base64"
        ):
            raise RuntimeError(f"Celery's message for {charge_order_task.name} changed shape")

    def body(self, order_id: str) -> str:
        """The MessageBody of `order_id`'s payment job: Celery's, with fresh ids."""
        task_id = str(uuid.uuid4())
        headers = {**self.envelope["headers"], "id": task_id, "root_id": task_id}
        headers["argsrepr"] = repr((order_id,))
        properties = {**self.envelope["properties"], "correlation_id": task_id}
        properties["delivery_tag"] = str(uuid.uuid4())
        body = base64.b64encode(json.dumps([[order_id], *self.rest]).encode()).decode()
        message = {**self.envelope, "body": body, "headers": headers, "properties": properties}
        return base64.b64encode(json.dumps(message).encode()).decode()


@functools.cache
def _template() -> JobTemplate:
    return JobTemplate()
