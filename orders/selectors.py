"""Reads of orders."""

import bisect
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count, Min, Prefetch
from django.db.models.functions import TruncMinute
from django.utils import timezone

from .models import Order, OrderEvent, OrderItem, OrderStatus
from .sql import column, table


def order_with_history(order_id: uuid.UUID) -> Order | None:
    return (
        Order.objects.prefetch_related(
            Prefetch("items", queryset=OrderItem.objects.order_by("id")),
            Prefetch("events", queryset=OrderEvent.objects.order_by("at", "id")),
        )
        .filter(pk=order_id)
        .first()
    )


def oldest_waiting_order_age_seconds(now: datetime | None = None) -> float | None:
    """Seconds since `created_at` of the oldest accepted order (waiting to be charged); None if none.

    Accepted only: an order being charged (processing) is not waiting. An order that went back to
    accepted for a retry counts from its creation, as the customer waits from then.
    """
    oldest = (
        Order.objects.filter(status=OrderStatus.ACCEPTED)
        .order_by("created_at")
        .values_list("created_at", flat=True)
    ).first()
    if oldest is None:
        return None
    return max(0.0, ((now or timezone.now()) - oldest).total_seconds())


@dataclass(frozen=True)
class OrderFigures:
    """The order side of the operations console (orders/…; the queue side comes from queues/)."""

    by_status: dict[str, int]  # every status, 0 included
    oldest_waiting_seconds: float | None
    unpublished: int  # accepted orders SQS has not taken a job for: in a web's outbox, or the sweeper's
    paid_per_minute: list[tuple[datetime, int]]  # the last hour, oldest first, one entry a minute
    failures_by_reason: list[tuple[str, int]]  # the most frequent first


def order_figures(now: datetime | None = None, *, minutes: int = 60, reasons: int = 10) -> OrderFigures:
    now = now or timezone.now()
    # order_by(): the model's default ordering would join the GROUP BY and split every group.
    counts = dict(
        Order.objects.order_by().values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    start = (now - timedelta(minutes=minutes - 1)).replace(second=0, microsecond=0)
    paid = dict(
        Order.objects.filter(status=OrderStatus.PAID, paid_at__gte=start)
        .order_by()
        .annotate(minute=TruncMinute("paid_at"))
        .values("minute")
        .annotate(n=Count("id"))
        .values_list("minute", "n")
    )
    minute_starts = (start + timedelta(minutes=i) for i in range(minutes))
    series = [(minute, paid.get(minute, 0)) for minute in minute_starts]
    failures = list(
        Order.objects.filter(status=OrderStatus.FAILED)
        .values("failure_reason")
        .annotate(n=Count("id"))
        .order_by("-n", "failure_reason")
        .values_list("failure_reason", "n")[:reasons]
    )
    return OrderFigures(
        by_status={status: counts.get(status, 0) for status in OrderStatus.values},
        oldest_waiting_seconds=oldest_waiting_order_age_seconds(now),
        unpublished=unpublished_order_count(),
        paid_per_minute=series,
        failures_by_reason=[(reason or "(no reason recorded)", n) for reason, n in failures],
    )


def unpublished_order_count() -> int:
    """Accepted orders SQS has not taken a payment job for (`enqueued_at` null).

    Null from the insert until SQS accepts the job, so this includes the orders waiting for the
    relay's next pass, each for a moment (RELAY_INTERVAL_SECONDS and one SendMessageBatch: about
    six at 60 orders/s and 0.1 s), besides those SQS refused, which the relay tries again after
    its backoff. A figure that stays high, or grows, means SQS refuses or no relay runs; the relay's
    own counters are `flashsale_relay_jobs_total` and `flashsale_relay_wait_seconds`.
    """
    return Order.objects.filter(status=OrderStatus.ACCEPTED, enqueued_at__isnull=True).count()


PAYING_RATE_WINDOW = timedelta(minutes=1)
# The shortest span the paying rate is measured over. In a sale's first minute the window holds
# only the seconds since the first payment: dividing by the whole minute made the first minute's
# ETAs up to five times too long (the lab's ETA phase: median error +23.8 s on a 29.8 s wait).
PAYING_RATE_MIN_SPAN = timedelta(seconds=5)


@dataclass(frozen=True)
class QueuePlace:
    """Where a waiting order stands: the jobs ahead of it, and when it should be paid."""

    position: int  # accepted orders placed before this one, still waiting to be charged
    eta_seconds: int | None  # (position + orders being charged) / the paying rate; None: no rate yet

    def as_dict(self) -> dict:
        return {"position": self.position, "eta_seconds": self.eta_seconds}


def queue_place(order: Order, now: datetime | None = None) -> QueuePlace | None:
    """The order's place in line while it waits (accepted or being charged); None once final.

    The position counts the accepted orders placed before it; the ETA comes from what the shop
    actually paid in the last minute, not from configuration (the workers, the provider's limit
    and its latency are all in that rate). An order being charged is at position 0.

    Every customer of a sale polls this, so it reads a snapshot of the line that each process
    takes at most once per QUEUE_PLACE_CACHE_SECONDS: the accepted orders' creation times in
    order (an index-only scan of `order_status_created_idx`) and the last minute's payments; a
    place is then a binary search. At a backlog of 10,000 a snapshot took ~23 ms and a place
    ~3 µs, where counting per request took 6.3 ms (docs/api.md).
    """
    if order.status not in (OrderStatus.ACCEPTED, OrderStatus.PROCESSING):
        return None
    line, rate, charging = _line_snapshot(now)
    created = order.created_at.timestamp()
    position = bisect.bisect_left(line, created) if order.status == OrderStatus.ACCEPTED else 0
    # By Little's law the orders being charged are the rate × one charge's time: the claims ahead of
    # this order take position ÷ rate, its own charge charging ÷ rate more (at least one payment's
    # worth: (position + 1) ÷ rate when nothing is being charged).
    return QueuePlace(position, round((position + max(charging, 1)) / rate) if rate else None)


_snapshot_lock = threading.Lock()
# (taken at, line, orders paid per second, orders being charged)
_snapshot: tuple[float, list[float], float, int] = (0.0, [], 0.0, 0)


def _waiting_since() -> list[float]:
    """The accepted orders' creation times, in order, as POSIX seconds.

    Floats, not datetimes: on PostgreSQL the datetimes of 10,000 rows took ~110 ms to load (each
    through Django's time-zone-aware loader), their epochs as float8 a few milliseconds.
    """
    created, status = column(Order, "created_at"), column(Order, "status")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT EXTRACT(EPOCH FROM {created})::float8 FROM {table(Order)}"
            f" WHERE {status} = %s ORDER BY {created}",
            [OrderStatus.ACCEPTED],
        )
        return [row[0] for row in cursor.fetchall()]


def _paying_rate(now: datetime) -> float:
    """Orders paid per second over the last minute, or over the time since the first payment in it
    when that is shorter (at least PAYING_RATE_MIN_SPAN): the rate the shop is paying at now."""
    window = Order.objects.filter(paid_at__gte=now - PAYING_RATE_WINDOW).aggregate(
        paid=Count("pk"), first=Min("paid_at")
    )
    if not window["paid"]:
        return 0.0
    span = min(PAYING_RATE_WINDOW, max(now - window["first"], PAYING_RATE_MIN_SPAN))
    return window["paid"] / span.total_seconds()


def _line_snapshot(now: datetime | None = None) -> tuple[list[float], float, int]:
    global _snapshot
    taken, line, rate, charging = _snapshot
    ttl = settings.QUEUE_PLACE_CACHE_SECONDS
    if ttl > 0 and time.monotonic() - taken < ttl:
        return line, rate, charging
    with _snapshot_lock:  # one refresh at a time; the others take the one it made
        taken, line, rate, charging = _snapshot
        if ttl > 0 and time.monotonic() - taken < ttl:
            return line, rate, charging
        now = now or timezone.now()
        line = _waiting_since()
        rate = _paying_rate(now)
        charging = Order.objects.filter(status=OrderStatus.PROCESSING).count()
        _snapshot = (time.monotonic(), line, rate, charging)
        return line, rate, charging
