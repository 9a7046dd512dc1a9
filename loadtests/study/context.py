"""What every phase shares: the bench, the report's data folder, the live status line, order reads.

Imported after `django.setup()` (loadtests.experiment): it reads orders with the ORM.
"""

from __future__ import annotations

import csv
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db.models import Count, F, Min, Q, QuerySet

from devstack.stack import Process
from loadtests.bench import Bench
from loadtests.instruments import EMAIL_DOMAIN, CpuMeter, LocustRun, Queue, Sampler, discard, postgres_pid
from loadtests.products import HOT_SKU
from loadtests.study.config import StudyConfig
from orders.models import Order
from sandbox.client import SandboxClient
from shop.models import Product
from sizing.results import CpuShares, OrderCounts, StockCheck


class Progress:
    """One live status line (rewritten in place on a terminal, printed every few seconds otherwise)."""

    def __init__(self, total: int):
        self.total = total
        self.index = 0
        self.began = time.monotonic()
        self.tty = sys.stderr.isatty()
        self.last_print = 0.0
        self.phase_name = ""

    def phase(self, name: str) -> None:
        self.index += 1
        self.phase_name = name
        self.status("starting", force=True)

    def status(self, text: str, *, force: bool = False) -> None:
        elapsed = time.monotonic() - self.began
        minutes, seconds = divmod(int(elapsed), 60)
        line = f"[{self.index}/{self.total} {minutes}m{seconds:02d}s] {self.phase_name}: {text}"
        if self.tty:
            sys.stderr.write("\r" + line[:150].ljust(150))
            sys.stderr.flush()
        elif force or time.monotonic() - self.last_print >= 10:
            sys.stderr.write(line + "\n")
            self.last_print = time.monotonic()

    def done(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


def orders_tagged(tag: str) -> QuerySet[Order]:
    return Order.objects.filter(email__endswith=f"@{tag}.{EMAIL_DOMAIN}")


def order_counts(tag: str) -> OrderCounts:
    rows = dict(orders_tagged(tag).values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    return OrderCounts(
        orders=sum(rows.values()),
        **{status: rows.get(status, 0) for status in ("accepted", "processing", "paid", "failed")},
    )


def order_rows(tag: str) -> list[dict]:
    """Every order of a run with its timings (epoch seconds): created, claimed, paid, final."""
    rows = (
        orders_tagged(tag)
        .annotate(claimed_at=Min("events__at", filter=Q(events__to_status="processing")))
        .values("id", "status", "created_at", "claimed_at", "paid_at", "updated_at")
    )

    def epoch(value):
        return value.timestamp() if value is not None else None

    return [
        {
            "id": str(r["id"]),
            "status": r["status"],
            "created_at": epoch(r["created_at"]),
            "claimed_at": epoch(r["claimed_at"]),
            "paid_at": epoch(r["paid_at"]),
            "final_at": epoch(r["paid_at"] or (r["updated_at"] if r["status"] == "failed" else None)),
        }
        for r in rows
    ]


def watch_drain(lab: Lab, tag: str, *, since: float, cap: float) -> float | None:
    """Wait until the run's orders are final (then return the last one's time), or `cap` seconds
    after `since` (then None)."""
    while True:
        counts = order_counts(tag)
        lab.progress.status(f"draining: {counts.open:,} open, {counts.paid:,} paid")
        if counts.open == 0:
            return max((r["final_at"] for r in order_rows(tag) if r["final_at"]), default=since)
        if time.time() - since >= cap:
            return None
        time.sleep(min(1.0, max(0.0, since + cap - time.time())))


def counts_row(tag: str) -> dict[str, int]:
    """Order counts as the samples CSV's db_* columns."""
    counts = order_counts(tag)
    return {
        "db_orders": counts.orders,
        "db_accepted": counts.accepted,
        "db_processing": counts.processing,
        "db_paid": counts.paid,
        "db_failed": counts.failed,
    }


def put_on_sale(units: int, sku: str = HOT_SKU) -> None:
    """Leave exactly `units` of the limited product `sku` for sale: stock = reserved + sold + units.

    One UPDATE, so it holds whatever the earlier runs reserved (no worker pays or releases their
    orders: their units stay held). Then it waits out the web's memory of a sold-out product
    (shop/soldout.py, SOLD_OUT_CACHE_SECONDS), which a product restocked from another process
    keeps for that long.
    """
    product = Product.objects.get(sku=sku)
    if product.stock is None:
        raise RuntimeError(f"{sku} is not a limited product: the hot runs need one (loadtests/products.py)")
    Product.objects.filter(pk=product.pk).update(stock=F("reserved") + F("sold") + units)
    time.sleep(float(getattr(settings, "SOLD_OUT_CACHE_SECONDS", 0.0)) + 0.1)


def stock_check(tag: str, *, offered: int, sku: str = HOT_SKU) -> StockCheck:
    """The limited product after a run of `offered` units; the run's orders say when it sold out."""
    product = Product.objects.get(sku=sku)
    created = sorted(orders_tagged(tag).values_list("created_at", flat=True))
    sold_out = product.left == 0 and len(created) > 1
    return StockCheck(
        sku=sku,
        offered=offered,
        stock=product.stock or 0,
        reserved=product.reserved,
        sold=product.sold,
        taken=offered - (product.left or 0),
        sold_out_after=(created[-1] - created[0]).total_seconds() if sold_out else None,
    )


@dataclass
class Lab:
    """The bench under study plus where the phases write; phases take it and return typed results."""

    bench: Bench
    config: StudyConfig
    dir: Path
    queue: Queue
    progress: Progress
    web: Process
    skus: list[str] = field(default_factory=list)

    @property
    def data(self) -> Path:
        return self.dir / "data"

    @property
    def host(self) -> str:
        return self.bench.stack.env["WEB_URL"]

    def pid(self, name: str) -> int:
        return next(p.pid for p in self.bench.stack.processes if p.name == name)

    def meter(self, **extra: int) -> CpuMeter:
        """A CPU meter on the stack's process trees (+ PostgreSQL's, this process's and `extra`)."""
        pids = {
            "web": self.web.pid,
            "relay": self.pid("relay"),
            "sqs": self.pid("sqs"),
            "sandbox": self.pid("sandbox"),
        }
        pids.update(extra)
        if self.bench.database.description.startswith("PostgreSQL") and (pg := postgres_pid()):
            pids["postgres"] = pg
        pids["bench"] = os.getpid()
        return CpuMeter(pids)

    def cpu(self, seconds: dict[str, float], locust: LocustRun | None = None) -> CpuShares:
        if locust is not None:
            seconds = {**seconds, "locust": round(locust.cpu_seconds, 2)}
        return CpuShares.from_meter(seconds, cores=os.cpu_count() or 1)

    def fresh_provider(self, *, limit: int) -> None:
        """Restart the sandbox (same port) with this limit and an empty ledger.

        A restart rather than a reset: charges abandoned by a killed worker or a given-up request
        would otherwise finish later and release slots of the new limiter.
        """
        port = int(self.bench.stack.env["PAYMENT_PROVIDER_URL"].rsplit(":", 1)[1])
        self.bench.stack.stop_named("sandbox")
        self.bench.stack.start_sandbox(
            port,
            PAYMENT_LATENCY_SECONDS=str(self.config.latency),
            PAYMENT_PROVIDER_CONCURRENCY=str(limit),
        )
        self.bench.sandbox = SandboxClient(self.bench.stack.env["PAYMENT_PROVIDER_URL"])

    def empty_queue(self, *, restart_web: bool = False) -> None:
        """Start the next run on an empty queue: restart the SQS server (its queues come back empty).

        PurgeQueue keeps messages in flight, which a killed worker leaves. The relay publishes
        within its interval of each accept (orders/relay.py); requests Locust gave up on (sync)
        still hold the web's threads: `restart_web` for those.
        """
        if restart_web:
            self.restart_web()
        self.bench.restart_sqs()

    def restart_web(self, **env: str) -> None:
        """A fresh web (what requests still running held is dropped), with `env` over the stack's."""
        discard(self.bench.stack, self.web)
        self.web = self.bench.stack.start_web(**env)

    def provider_idle(self, *, timeout: float) -> None:
        """Wait until the sandbox runs and queues no charge (the ones admitted before a load ended)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stats = self.bench.sandbox.stats()
            if not stats.get("in_flight") and not stats.get("waiting"):
                return
            time.sleep(0.2)

    def load(
        self,
        tag: str,
        classes: list[str],
        *,
        users: int,
        seconds: float,
        user_rate: float | None = None,
        sampler: Sampler | None = None,
    ) -> LocustRun:
        """Run Locust to its end (with `sampler` on, if given) and return it."""
        locust = LocustRun(
            self.data / f"locust_{tag}", self.host, classes, users, seconds, tag,
            user_rate or self.config.user_rate,
        )  # fmt: skip
        if sampler is not None:
            sampler.start()
        locust.start()
        locust.wait(lambda: self.progress.status(f"load {time.time() - locust.started_at:.0f}/{seconds:g} s"))
        return locust

    def write_csv(self, name: str, rows: list[dict]) -> None:
        if not rows:
            return
        columns = list(dict.fromkeys(k for row in rows for k in row))
        with (self.data / name).open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
