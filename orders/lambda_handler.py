"""The Lambda consumer of payment jobs: SQS event-source batches, charged through orders.charging.

The same charge path as the Celery task (`orders.tasks`): claim by compare-and-set, call the
provider with the order's idempotency key, record by compare-and-set. So a Lambda and ECS workers
may consume the same queue side by side (while switching the stack's `Consumer` parameter) and an
order is still charged once.

Each record either succeeds (paid, declined, or not ours to charge: all deleted from the queue) or
is reported as a batch item failure through Powertools' batch processor (the event source mapping
has ReportBatchItemFailures), so SQS gives back only that message, after its visibility timeout,
and dead-letters it after SQS_MAX_RECEIVE_COUNT receives: a provider outage (retry) and a poison
message (unreadable) take that path. Nothing else in the batch is retried.

Secrets: ECS injects them into the environment; Lambda cannot, so the stack passes
LAMBDA_SECRETS = {"ENV_NAME": {"arn": ..., "field": optional JSON key}} and they are read once per
cold start with Powertools' parameters utility, before Django's settings load.
"""

from __future__ import annotations

import json
import os

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

CHARGE_TASK = "orders.charge_order"


def load_secrets(environ=os.environ) -> None:
    """Put each secret named in LAMBDA_SECRETS into the environment (a JSON field when given)."""
    for name, source in json.loads(environ.get("LAMBDA_SECRETS") or "{}").items():
        if field := source.get("field"):
            environ[name] = str(parameters.get_secret(source["arn"], transform="json")[field])
        else:
            environ[name] = str(parameters.get_secret(source["arn"]))


os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
load_secrets()

import django  # noqa: E402  (secrets first: production settings refuse to load without them)

django.setup()

from django.conf import settings  # noqa: E402

from observability import metrics  # noqa: E402
from orders import charging  # noqa: E402
from queues.sqs import UnreadableMessage, task_call  # noqa: E402

logger = Logger(service="flashsale-payments")
# A batch whose every record failed is still answered with its item failures, not an exception: with
# batch size 1 (the stack's default) every retry would otherwise count as a function error.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class ChargeNotFinished(Exception):
    """The provider was unavailable: leave the message to SQS, which delivers it again."""


def charge_record(record: SQSRecord) -> str:
    task, args, kwargs = task_call(record.body)
    if task != CHARGE_TASK:
        raise UnreadableMessage(f"not a payment job: {task}")
    order_id = kwargs.get("order_id", args[0] if args else None)
    outcome = charging.charge_order(str(order_id), timeout=settings.PAYMENT_TIMEOUT_SECONDS)
    logger.info("payment job done", extra={"order_id": order_id, "outcome": outcome.value})
    if outcome is charging.Outcome.RETRY:
        raise ChargeNotFinished(f"order {order_id}: provider unavailable, SQS will deliver it again")
    return outcome.value


@logger.inject_lambda_context
def handler(event: dict, context) -> PartialItemFailureResponse:
    try:
        return process_partial_response(
            event=event, record_handler=charge_record, processor=processor, context=context
        )
    finally:
        # Lambda freezes the environment between invocations: the EMF flusher thread may not run
        # again for a long while, so each invocation writes its own metrics before it returns.
        if emf := metrics.emf():
            emf.flush()
