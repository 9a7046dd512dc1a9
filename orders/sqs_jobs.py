"""The payment-jobs port on Celery and SQS: the only order module that knows about a broker."""

from __future__ import annotations

import logging
import uuid

from botocore.exceptions import BotoCoreError, ClientError

from queues.sqs import queue_depth

from .jobs import JobsUnavailable
from .tasks import charge_order_task

log = logging.getLogger(__name__)


class SqsPaymentJobs:
    def publish(self, order_id: uuid.UUID) -> bool:
        try:
            charge_order_task.apply_async((str(order_id),))
        except Exception as exc:  # whatever the broker raised, the order is safe in the database
            log.warning(
                "could not enqueue payment of order %s (%r); the sweeper will publish it", order_id, exc
            )
            return False
        return True

    def waiting(self) -> int:
        try:
            return queue_depth().total
        except (BotoCoreError, ClientError) as exc:
            raise JobsUnavailable(str(exc)) from exc
