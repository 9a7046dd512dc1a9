"""The outbox's relay: it publishes the payment jobs of accepted orders, read from the orders table.

The order row is the outbox: an async order is written with `enqueued_at` null, and the web's
work ends at that commit and the 202. This process (`manage.py relay_orders`, the `relay` role of
config.processes) finds the null orders and publishes their jobs in SendMessageBatch requests of
ten. `publish_payment_jobs` stamps `enqueued_at` on the jobs SQS took.

Why a process of its own. Until issue 21, each web process ran publisher threads (orders/outbox.py,
deleted). They cost the web about 0.95 ms of CPU per order at saturation, about a fifth of an
accept, under the web process's GIL. The web served 27 % more accepts per second with publishing
off. The figures are in docs/flash-sale-path.md. Moving publishing here also closes a gap: a killed
web process could no longer strand the ids it held, because it holds none.

Why polling, not LISTEN/NOTIFY:
- LISTEN is session state, so RDS Proxy pins the connection for good, and the deploy talks to the
  database through the proxy (deploy/stack.py).
- NOTIFY queues its notification under a lock that every notifying commit of the cluster takes in
  turn, so each accept would pay for it at exactly the rate this exists for.
- An idle pass is one lookup in `order_status_enqueued_idx` that finds nothing. At
  RELAY_INTERVAL_SECONDS (0.1) it costs each relay thread 10 tiny reads a second.
- A pass that filled its batch runs again at once, so a sale is relayed as fast as SQS answers.

Safe with any number of relays, and beside the sweeper. A pass locks its orders
`FOR UPDATE SKIP LOCKED` and keeps the lock until the jobs are out and stamped, so two passes never
take the same order. A relay killed mid-pass rolls back, and its orders stay null for the next
pass; for the jobs SQS had already taken, that makes a duplicate job, which is harmless because
the claim is conditional. A worker claiming an order whose job went out but whose pass has not
committed waits for that commit: milliseconds.

A refused job (SQS down or throttling) stays null. The next pass tries again after a backoff that
doubles from RELAY_INTERVAL_SECONDS up to RELAY_BACKOFF_MAX_SECONDS. With no relay running at all,
the sweeper still publishes null orders after SWEEP_GRACE_SECONDS (orders.recovery).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from observability import heartbeat, metrics

from . import jobs
from .models import Order, OrderStatus
from .publishing import publish_payment_jobs

log = logging.getLogger("orders.relay")


@dataclass(frozen=True)
class Pass:
    taken: int  # orders whose jobs this pass tried to publish
    refused: int  # ... of which SQS took none (still null)


def relay_once(limit: int | None = None) -> Pass:
    """Publish the jobs of up to `limit` (RELAY_BATCH_SIZE) null orders, the longest-waiting first."""
    limit = limit or settings.RELAY_BATCH_SIZE
    with transaction.atomic():
        waiting = (
            Order.objects.select_for_update(skip_locked=True)
            .filter(status=OrderStatus.ACCEPTED, enqueued_at__isnull=True)
            .order_by("created_at")
            .values_list("id", "created_at")[:limit]
        )
        taken = list(waiting)
        if not taken:
            return Pass(taken=0, refused=0)
        refused = publish_payment_jobs([order_id for order_id, _ in taken])
    now = timezone.now()
    metrics.relayed(
        published=len(taken) - refused,
        refused=refused,
        waited=[(now - created_at).total_seconds() for _, created_at in taken],
    )
    return Pass(taken=len(taken), refused=refused)


def relay_until_empty(limit: int | None = None) -> int:
    """Relay pass after pass until none is left (or SQS refuses); how many jobs SQS took.

    For tests and one-off use (`manage.py relay_orders --once`): the long-running relay is `run`."""
    limit = limit or settings.RELAY_BATCH_SIZE
    published = 0
    while True:
        result = relay_once(limit)
        published += result.taken - result.refused
        if result.refused or result.taken < limit:
            return published


def run(stop: threading.Event) -> None:
    """RELAY_THREADS threads relaying until `stop` is set; returns once they all have finished.

    The publisher is built first (Celery's job template, the boto3 client, no request to SQS), so
    that the sale's first orders do not wait for it. The process beats (observability.heartbeat)
    once a second while every thread has finished a pass within RELAY_STALL_SECONDS: a thread
    stuck in a call (a lock that is never released, a connection that hangs) stops the beat, and
    the container's health check replaces the task, where a beat that only checked that the
    threads lived would keep a relay that publishes nothing healthy."""
    try:
        jobs.payment_jobs().prepare()
    except Exception as exc:  # an optimisation: the first pass builds it otherwise
        log.warning("relay warm-up incomplete: %r", exc)
    progress: dict[str, float] = {}  # thread name → when it last finished a pass (or started)

    def started(name: str) -> threading.Thread:
        progress[name] = time.monotonic()
        thread = threading.Thread(target=_relay_forever, args=(stop, progress), name=name, daemon=True)
        thread.start()
        return thread

    threads = [started(f"relay-{index}") for index in range(settings.RELAY_THREADS)]
    heartbeat.beat("relay")
    while not stop.wait(1):
        for index, thread in enumerate(threads):
            if not thread.is_alive():  # an error no pass expected: logged by the thread, replaced here
                log.error("relay thread %s died; starting another", thread.name)
                threads[index] = started(thread.name)
        if stalled := stalled_threads(progress, time.monotonic()):
            log.error("relay thread(s) %s finished no pass in %gs; not beating", ", ".join(stalled),
                      settings.RELAY_STALL_SECONDS)  # fmt: skip
            continue
        heartbeat.beat("relay")
    for thread in threads:
        thread.join(timeout=settings.RELAY_BACKOFF_MAX_SECONDS + 5)


def stalled_threads(progress: dict[str, float], now: float) -> list[str]:
    """The relay threads that have finished no pass for longer than RELAY_STALL_SECONDS."""
    return sorted(name for name, last in progress.items() if now - last > settings.RELAY_STALL_SECONDS)


def _relay_forever(stop: threading.Event, progress: dict[str, float]) -> None:
    """One relay thread: a pass, then at once if it filled its batch, else after the interval (or
    the backoff while SQS refuses or the database fails). Keeps its connection between passes:
    without a pool (CONN_MAX_AGE 0) closing it would cost a connect every 50 ms."""
    backoff = settings.RELAY_INTERVAL_SECONDS
    name = threading.current_thread().name
    while not stop.is_set():
        progress[name] = time.monotonic()
        try:
            result = relay_once()
        except DatabaseError:
            log.exception("relay pass failed; trying again in %gs", backoff)
            connection.close()  # a broken connection is not reused; the next pass opens another
        else:
            if not result.refused:
                backoff = settings.RELAY_INTERVAL_SECONDS
                if result.taken < settings.RELAY_BATCH_SIZE:
                    stop.wait(settings.RELAY_INTERVAL_SECONDS)
                continue
            log.warning(
                "SQS refused %d of %d payment jobs; trying again in %gs",
                result.refused,
                result.taken,
                backoff,
                extra={"taken": result.taken, "refused": result.refused},
            )
        stop.wait(backoff)
        backoff = min(backoff * 2, settings.RELAY_BACKOFF_MAX_SECONDS)
    connection.close()
