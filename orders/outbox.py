"""Publish payment jobs off the request path, in batches.

Accepting an async order is a database commit; publishing its job to SQS took half of the
request's time (about 10 ms of 21 locally) and all of it when SQS is slow or down (seconds of
retries). After commit the order id goes to this per-process outbox instead, so the customer's
202 never waits for the broker. A few publisher threads take up to `BATCH_SIZE` ids at a time
(SQS's SendMessageBatch limit) and hand them to `sink`. One of them at a time gathers: it waits up
to `linger` seconds after the first id for a full batch. Without that, each id found an idle
publisher at once and went out alone: one request per order at 30 orders/s a process (the lab's
60/s over two), measured; with 0.1 s, one request per four orders there, and a job reaches SQS
at most 0.1 s later, against a 3 s charge.

What this holds is a copy; the order row stays the outbox of record. Its `enqueued_at` is null
from the insert until SQS accepts the job (the sink stamps it, orders.publishing), so an id lost
here — refused, dropped by a full backlog, or held by a process that died — leaves an order the
sweeper publishes after SWEEP_GRACE_SECONDS. A process on its way out drains this first
(`drain(flush=True)`, from gunicorn's worker_exit hook: config/gunicorn.py), within a bound.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections import deque
from collections.abc import Callable, Sequence

from django.db import connections

from observability import metrics

BATCH_SIZE = 10  # SQS's SendMessageBatch takes at most 10 entries
PUBLISHERS = 4  # threads per process; each sends one batch at a time

Sink = Callable[[Sequence[uuid.UUID]], object]

log = logging.getLogger(__name__)


class Outbox:
    """Order ids waiting to be published, and the threads that publish them in batches.

    A submit wakes at most one publisher, never all of them: each thread woken takes the GIL, in
    turn, from the request that submitted, before that request has sent its 202. With one condition
    and `notify_all` the four publishers woke on every order that found the outbox empty (an strace
    of one request shows them between its commit and its response); the latency this cost was
    inside the lab's noise, the wake-ups are simply not needed.
    """

    def __init__(self, sink: Sink, *, max_pending: Callable[[], int], linger: Callable[[], float]):
        self.sink = sink
        self.max_pending = max_pending
        self.linger = linger
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # idle publishers: ids to gather, nobody gathering
        self._full = threading.Condition(self._lock)  # the gatherer: a full batch (or a flush)
        self._settled = threading.Condition(self._lock)  # drain(): nothing queued or in flight
        self._queue: deque[uuid.UUID] = deque()
        self._in_flight: list[uuid.UUID] = []  # handed to the sink, not yet returned
        self._gathering = False  # a publisher is waiting for the next batch to fill
        self._flushing = 0  # drains under way that asked not to linger
        self._pid: int | None = None

    def submit(self, order_id: uuid.UUID) -> bool:
        """Queue one id for publishing soon; False if the backlog is full (nothing queued)."""
        with self._lock:
            self._start_threads()
            if len(self._queue) + len(self._in_flight) >= self.max_pending():
                return False
            self._queue.append(order_id)
            metrics.outbox_pending(len(self._queue) + len(self._in_flight))
            if self._gathering:
                if len(self._queue) >= BATCH_SIZE:
                    self._full.notify()  # the gatherer's batch is full
            elif len(self._queue) == 1:
                self._work.notify()  # one idle publisher gathers (all busy: the next one free will)
        return True

    def drain(self, timeout: float = 10, *, flush: bool = False) -> bool:
        """Wait until everything submitted so far was handed to the sink and returned; True if in time.

        With `flush` the publishers stop lingering for fuller batches while this waits: a process
        on its way out has no more orders coming to share them.
        """
        with self._lock:
            if flush:
                self._flushing += 1
                self._full.notify_all()
            try:
                return self._settled.wait_for(self._is_settled, timeout)
            finally:
                if flush:
                    self._flushing -= 1

    def unsent(self) -> list[uuid.UUID]:
        """The ids not yet published: queued, or in a batch the sink has not returned from."""
        with self._lock:
            return [*self._in_flight, *self._queue]

    def _is_settled(self) -> bool:
        return not self._queue and not self._in_flight

    def _may_gather(self) -> bool:
        return bool(self._queue) and not self._gathering

    def _batch_ready(self) -> bool:
        return len(self._queue) >= BATCH_SIZE or self._flushing > 0

    def _start_threads(self) -> None:
        """Start the publishers on first use in each process: threads do not survive gunicorn's fork."""
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._queue.clear()
        self._in_flight.clear()
        self._gathering = False
        self._flushing = 0
        for index in range(PUBLISHERS):
            threading.Thread(target=self._publish_forever, name=f"outbox-{index}", daemon=True).start()

    def _publish_forever(self) -> None:
        while True:
            with self._lock:
                self._work.wait_for(self._may_gather)
                self._gathering = True
                self._full.wait_for(self._batch_ready, timeout=self.linger())
                self._gathering = False
                batch = [self._queue.popleft() for _ in range(min(BATCH_SIZE, len(self._queue)))]
                self._in_flight += batch
                if self._queue:
                    self._work.notify()  # what is left starts the next gathering
            try:
                self.sink(batch)
            except Exception:
                # The sink's own failure (its database write, say): the orders stay unpublished
                # (enqueued_at null) and the sweeper publishes them. The thread must live on.
                log.exception(
                    "publishing %d payment job(s) failed; the sweeper will publish them",
                    len(batch),
                    extra={"order_ids": [str(order_id) for order_id in batch]},
                )
            finally:
                connections.close_all()  # publisher threads must not hold database connections
                with self._lock:
                    for order_id in batch:
                        self._in_flight.remove(order_id)
                    metrics.outbox_pending(len(self._queue) + len(self._in_flight))
                    if self._is_settled():
                        self._settled.notify_all()
