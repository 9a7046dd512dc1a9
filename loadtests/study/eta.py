"""Phase: how right the place in line's ETA was (issue 23), in a flash sale drained to its last order.

One run: a fresh sandbox with no limit, one worker of `eta_workers` threads, the seed's Locust load
for `eta_duration` seconds, then the drain watched until every order is final (or a cap). Beside
it, a probe thread reads one order in `every` (by arrival) with `GET /api/orders/<id>`, as its
customer's page would: once soon after accept, then every `eta_reread` seconds while it waits.
Each read's prediction is its time plus `eta_seconds`; after the drain, the order's `paid_at` is
the actual. A few hundred orders at most, so the reads themselves do not load the web.

The ETA reads the whole database's line and paying rate, so the run goes first among the phases
that place orders: no earlier order waits in line, none was paid in the last minute (the report
shows both figures, in case another order of phases changes that).
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

import httpx
from django.db import connection
from django.utils import timezone

from loadtests.bench import POLL_SECONDS
from loadtests.instruments import discard, wait_for_log
from loadtests.study.context import Lab, order_counts, order_rows, orders_tagged, watch_drain
from orders.models import Order, OrderStatus
from orders.selectors import PAYING_RATE_WINDOW
from sizing.measure import percentile
from sizing.results import EtaRead, EtaRun, eta_error, eta_groups, eta_shrinks

# An order is sampled once it is this old: its transaction has committed, and orders created just
# before it (committing a moment later) are not skipped by the "created after" query.
SETTLE_SECONDS = 0.3
POLL_INTERVAL = 0.2


class EtaProbe:
    """A background thread reading every `every`-th order of run `tag`, then its re-reads while it waits."""

    def __init__(self, host: str, tag: str, *, every: int, reread: float):
        self.host, self.tag, self.every, self.reread = host, tag, every, reread
        self.reads: list[EtaRead] = []
        self.errors = 0
        self.sampled = 0
        self._seen = 0
        self._last_created: datetime | None = None
        self._due: dict[str, tuple[float, float, int]] = {}  # order -> (created_at, next read at, nth)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> EtaProbe:
        self._thread = threading.Thread(target=self._run, name="eta-probe", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[EtaRead]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        return self.reads

    def _run(self) -> None:
        try:  # the thread has its own database connection; close it when the thread ends
            with httpx.Client(base_url=self.host, timeout=10) as client:
                while not self._stop.is_set():
                    self._sample_new(client)
                    now = time.time()
                    for order, (created, due, nth) in list(self._due.items()):
                        if due <= now:
                            self._read(client, order, created, nth)
                    self._stop.wait(POLL_INTERVAL)
        finally:
            connection.close()

    def _sample_new(self, client: httpx.Client) -> None:
        settled = timezone.now() - timedelta(seconds=SETTLE_SECONDS)
        new = orders_tagged(self.tag).filter(created_at__lte=settled)
        if self._last_created is not None:
            new = new.filter(created_at__gt=self._last_created)
        for order_id, created in new.order_by("created_at", "id").values_list("id", "created_at"):
            self._last_created = created
            self._seen += 1
            if (self._seen - 1) % self.every == 0:
                self.sampled += 1
                self._read(client, str(order_id), created.timestamp(), 0)

    def _read(self, client: httpx.Client, order: str, created: float, nth: int) -> None:
        sent = time.time()
        try:
            answer = client.get(f"/api/orders/{order}")
            body = answer.json() if answer.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            body = None
        if body is None:
            self.errors += 1
            self._due[order] = (created, sent + self.reread, nth)  # try again at the next read's time
            return
        queue = body.get("queue") or {}
        self.reads.append(
            EtaRead(
                order=order, created_at=created, read_at=sent, nth=nth, status=body["status"],
                position=queue.get("position"), eta_seconds=queue.get("eta_seconds"),
            )
        )  # fmt: skip
        if queue:
            self._due[order] = (created, sent + self.reread, nth + 1)
        else:
            self._due.pop(order, None)


def run(lab: Lab) -> EtaRun:
    c = lab.config
    name = f"eta-w{c.eta_workers}-l0"
    window = PAYING_RATE_WINDOW.total_seconds()
    waiting_before = Order.objects.filter(status=OrderStatus.ACCEPTED).count()
    paid_before = Order.objects.filter(paid_at__gte=timezone.now() - PAYING_RATE_WINDOW).count()
    lab.fresh_provider(limit=0)
    worker = lab.bench.stack.start_worker(f"worker-{name}", concurrency=c.eta_workers)
    wait_for_log(worker, " ready.", timeout=120)
    every = max(1, round(c.eta_orders / c.eta_samples))
    probe = EtaProbe(lab.host, name, every=every, reread=c.eta_reread).start()
    locust = lab.load(name, ["AsyncCheckoutUser"], users=c.users, seconds=c.eta_duration)
    drained_at = watch_drain(lab, name, since=time.time(), cap=c.eta_drain_cap)
    # The probe's last re-reads see the last orders final; give it one round after the drain.
    time.sleep(POLL_INTERVAL * 2)
    reads = probe.stop()
    discard(lab.bench.stack, worker)
    stopped_at = time.time()
    rows, counts = order_rows(name), order_counts(name)
    time.sleep(POLL_SECONDS + 0.5)  # the killed worker's last long poll runs out before the queue is emptied
    lab.empty_queue()

    paid_at = {r["id"]: r["paid_at"] for r in rows}
    first_paid = min((r["paid_at"] for r in rows if r["paid_at"] is not None), default=None)
    created = [r["created_at"] for r in rows]
    load_start, load_end = (min(created), max(created)) if created else (locust.started_at, locust.started_at)
    first_reads = [r for r in reads if r.nth == 0]
    shrank, pairs = eta_shrinks(reads)
    lab.write_csv(f"orders_{name}.csv", rows)
    lab.write_csv(
        f"eta_reads_{name}.csv",
        [
            {
                "order": r.order, "nth": r.nth, "t": round(r.read_at - load_start, 3),
                "since_accept": round(r.read_at - r.created_at, 3), "status": r.status,
                "position": r.position, "eta_seconds": r.eta_seconds,
                "paid_after": _round(paid_at.get(r.order), r.read_at),
                "error": _round3(eta_error(r, paid_at.get(r.order))),
            }
            for r in reads
        ],
    )  # fmt: skip
    return EtaRun(
        name=name,
        workers=c.eta_workers,
        provider_limit=0,
        latency=c.latency,
        users=c.users,
        duration=c.eta_duration,
        orders=counts,
        every=every,
        reread_seconds=c.eta_reread,
        rate_window_seconds=window,
        sampled=probe.sampled,
        reads=len(reads),
        read_errors=probe.errors,
        first_read_delay_p50=percentile([r.read_at - r.created_at for r in first_reads], 50),
        waiting_before=waiting_before,
        paid_last_minute_before=paid_before,
        first_paid_at=first_paid,
        peak_position=max((r.position or 0 for r in reads), default=0),
        shrank=shrank,
        eta_pairs=pairs,
        load_start=load_start,
        load_end=load_end,
        stopped_at=stopped_at,
        drained_at=drained_at,
        groups=eta_groups(reads, paid_at, first_paid_at=first_paid, window=window),
    )


def _round(paid: float | None, read_at: float) -> float | None:
    return round(paid - read_at, 3) if paid is not None else None


def _round3(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None
