"""The operations console's figures, read once for the page, its JSON variant and the tests.

The order side is `orders.selectors.order_figures` (the database); the queue side is SQS's own
approximate counts, read with a short timeout so that an SQS outage shows as "unavailable" on the
page instead of hanging it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime

from botocore.exceptions import BotoCoreError, ClientError
from django.utils import timezone

from orders.selectors import OrderFigures, order_figures
from queues.sqs import payment_queue_depths

log = logging.getLogger(__name__)

SQS_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class QueueFigures:
    waiting: int  # visible: no worker has it yet
    in_flight: int  # a worker received it and has not acked it yet
    delayed: int  # a retry waiting out its countdown
    dead_lettered: int  # in the DLQ


@dataclass(frozen=True)
class OperationsSnapshot:
    taken_at: datetime
    queue: QueueFigures | None  # None: SQS did not answer (queue_error says why)
    queue_error: str
    orders: OrderFigures

    @property
    def paid_last_hour(self) -> int:
        return sum(n for _, n in self.orders.paid_per_minute)

    def as_json(self) -> dict:
        orders = asdict(self.orders)
        orders["paid_per_minute"] = [
            {"minute": minute.isoformat(), "paid": n} for minute, n in self.orders.paid_per_minute
        ]
        orders["failures_by_reason"] = [
            {"reason": reason, "orders": n} for reason, n in self.orders.failures_by_reason
        ]
        return {
            "taken_at": self.taken_at.isoformat(),
            "queue": asdict(self.queue) if self.queue else None,
            "queue_error": self.queue_error,
            "orders": orders,
        }


def queue_figures() -> QueueFigures:
    main, dlq = payment_queue_depths(timeout=SQS_TIMEOUT_SECONDS)
    return QueueFigures(main.visible, main.in_flight, main.delayed, dlq.visible + dlq.in_flight)


def operations_snapshot() -> OperationsSnapshot:
    now = timezone.now()
    try:
        queue, error = queue_figures(), ""
    except (BotoCoreError, ClientError) as exc:
        log.warning("operations console: SQS did not answer: %r", exc)
        queue, error = None, "SQS did not answer"
    return OperationsSnapshot(taken_at=now, queue=queue, queue_error=error, orders=order_figures(now))
