"""The fault-injection scenarios. Import after Django is set up (they read the database)."""

from __future__ import annotations

import base64
import json
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
from django.conf import settings
from django.db import connections, transaction

from devstack.stack import Process, Stack
from orders import charging, checkout
from orders.models import Order, OrderEvent, OrderItem, OrderStatus
from orders.tasks import charge_order_task
from queues.sqs import queue_depth, sqs_client
from sandbox.client import SandboxClient
from shop.models import CustomerAllowance, Product

EMAIL = "chaos@example.com"


@dataclass
class ChaosRig:
    """What a scenario needs: somewhere to post orders, workers, the relay and a sweeper to start,
    an SQS to stop.

    Workers, the relay and the sweeper run supervised, as ECS runs them: one that dies is started
    again.
    The orders' database is the one Django in this process is set up with.
    """

    stack: Stack
    web_url: str
    sandbox: SandboxClient
    worker_env: dict[str, str]
    restart_sqs: Callable[[], None]
    sku: str = "mug"
    workers: list[Process] = field(default_factory=list)
    restarts: int = 0
    _supervising: threading.Event = field(default_factory=threading.Event)
    _supervisor: threading.Thread | None = None

    def start_workers(self, count: int, concurrency: int = 4) -> list[Process]:
        """`count` workers, and the relay that publishes the accepted orders' jobs to them."""
        self.ensure_relay()
        started = [
            self.stack.start_worker(
                f"worker-{len(self.workers) + i}", concurrency=concurrency, **self.worker_env
            )
            for i in range(count)
        ]
        self._supervise(started)
        return started

    def ensure_relay(self) -> Process:
        """The stack's relay (the bench's, under `make chaos`), supervised like the workers; one is
        started if the stack has none (the test suite's)."""
        running = [p for p in self.stack.processes if p.name.startswith("relay") and p.alive()]
        relay = (
            running[0]
            if running
            else self.stack.start_relay(f"relay-{uuid.uuid4().hex[:6]}", **self.worker_env)
        )
        if relay not in self.workers:
            self._supervise([relay])
        return relay

    def start_sweeper(self, every: float = 1.0) -> Process:
        argv = [sys.executable, "manage.py", "sweep_orders", "--every", str(every)]
        process = self.stack.spawn(f"sweeper-{uuid.uuid4().hex[:6]}", argv, **self.worker_env)
        self._supervise([process])
        return process

    def _supervise(self, processes: list[Process]) -> None:
        self.workers.extend(processes)
        if self._supervisor is None:
            self._supervising.set()
            self._supervisor = threading.Thread(target=self._restart_the_dead, daemon=True)
            self._supervisor.start()

    def _restart_the_dead(self) -> None:
        while self._supervising.is_set():
            for process in list(self.workers):
                if not process.alive() and self._supervising.is_set():
                    process.start()
                    self.restarts += 1
            time.sleep(0.3)

    def stop_all(self) -> None:
        self._supervising.clear()
        if self._supervisor is not None:
            self._supervisor.join()
            self._supervisor = None
        for process in self.workers:
            process.stop()
            if process in self.stack.processes:
                self.stack.processes.remove(process)
        self.workers.clear()
        self.restarts = 0
        time.sleep(1.5)  # let the stopped workers' last long polls at SQS run out

    def post_orders(self, count: int, *, path: str = "/api/orders/async", key: str | None = None,
                    threads: int = 16) -> list[httpx.Response]:  # fmt: skip
        headers = {"Idempotency-Key": key} if key else {}
        body = {"email": EMAIL, "items": [{"sku": self.sku, "quantity": 1}]}
        with httpx.Client(base_url=self.web_url, timeout=60) as client, ThreadPoolExecutor(threads) as pool:
            return list(pool.map(lambda _: client.post(path, json=body, headers=headers), range(count)))


@dataclass
class Tally:
    accepted: int
    paid: int
    failed: int
    lost: int  # accepted but neither paid nor failed when the scenario ended
    charged_twice: int  # orders with more than one successful charge in the ledger
    slowest_s: float  # slowest accepted → paid

    def line(self) -> str:
        return (
            f"accepted {self.accepted}  paid {self.paid}  failed {self.failed}  lost {self.lost}  "
            f"charged twice {self.charged_twice}  slowest accepted→paid {self.slowest_s:.1f}s"
        )


def order_ids(responses: Iterable[httpx.Response], *, status: int = 202) -> list[str]:
    return [r.json()["id"] for r in responses if r.status_code == status]


def wait_settled(ids: list[str], *, timeout: float) -> float:
    """Wait until every order is paid or failed (or `timeout`); return the seconds waited."""
    started = time.monotonic()
    final = (OrderStatus.PAID, OrderStatus.FAILED)
    while time.monotonic() - started < timeout:
        if Order.objects.filter(pk__in=ids).exclude(status__in=final).count() == 0:
            break
        time.sleep(0.2)
    return time.monotonic() - started


def tally(ids: list[str], sandbox: SandboxClient) -> Tally:
    orders = list(Order.objects.filter(pk__in=ids).only("status", "payment_key", "created_at", "paid_at"))
    per_key = sandbox.charges_per_key()
    paid = [o for o in orders if o.status == "paid"]
    failed = sum(o.status == "failed" for o in orders)
    return Tally(
        accepted=len(ids),
        paid=len(paid),
        failed=failed,
        lost=len(ids) - len(paid) - failed,
        charged_twice=sum(per_key[o.payment_key] > 1 for o in orders),
        slowest_s=max(((o.paid_at - o.created_at).total_seconds() for o in paid), default=0.0),
    )


# --- the scenarios ----------------------------------------------------------------------------


def sigkill_workers(rig: ChaosRig, *, orders: int = 300, workers: int = 2, kills: int = 5,
                    latency: float = 0.5, timeout: float = 180) -> dict:  # fmt: skip
    """SIGKILL workers at random moments while they charge; a supervisor restarts them."""
    rig.sandbox.reset(latency_seconds=latency, concurrency=0)
    rig.start_workers(workers)
    rig.start_sweeper()
    ids = order_ids(rig.post_orders(orders))
    rng = random.Random(7)
    window = orders * latency / (workers * 4)  # how long the workers need, roughly
    for _ in range(kills):
        time.sleep(rng.uniform(0.2, 1.0) * window / kills)
        victims = [w for w in rig.workers if w.name.startswith("worker") and w.alive()]
        # SIGKILL: no warm shutdown; its claimed orders are abandoned mid-charge. The supervisor
        # starts it again, as ECS would.
        rng.choice(victims).kill()
    wait_settled(ids, timeout=timeout)
    result = tally(ids, rig.sandbox)
    restarts = rig.restarts
    # Orders a killed worker had claimed: finished only because their lease ran out.
    abandoned = OrderEvent.objects.filter(order_id__in=ids, detail__startswith="lease expired").count()
    rig.stop_all()
    return {
        "scenario": "sigkill",
        "kills": kills,
        "restarts": restarts,
        "abandoned_mid_charge": abandoned,
        **result.__dict__,
        "line": f"{kills} SIGKILLs ({abandoned} orders abandoned mid-charge)  {result.line()}",
    }


def broker_outage(rig: ChaosRig, *, orders: int = 100, outage: float = 20, latency: float = 0.1,
                  timeout: float = 120) -> dict:  # fmt: skip
    """Stop the SQS emulator (losing its state) while orders arrive; start it again."""
    rig.sandbox.reset(latency_seconds=latency, concurrency=0)
    rig.start_workers(2)
    rig.start_sweeper()
    before = order_ids(rig.post_orders(orders // 4))  # some published just before the outage
    rig.stack.stop_named("sqs")
    outage_started = time.monotonic()
    during = rig.post_orders(orders - len(before), threads=8)
    time.sleep(max(0.0, outage - (time.monotonic() - outage_started)))
    rig.restart_sqs()
    recovered_at = time.monotonic()
    ids = before + order_ids(during)
    wait_settled(ids, timeout=timeout)
    recovery = time.monotonic() - recovered_at
    result = tally(ids, rig.sandbox)
    restarts = rig.restarts
    rig.stop_all()
    accepted_during = sum(r.status_code == 202 for r in during)
    accept_ms = sorted(r.elapsed.total_seconds() * 1000 for r in during)
    return {
        "scenario": "broker-outage",
        "outage_s": outage,
        "posted_during_outage": len(during),
        "accepted_during_outage": accepted_during,
        "accept_ms_median_during_outage": accept_ms[len(accept_ms) // 2],
        "accept_ms_max_during_outage": accept_ms[-1],
        "recovery_s": recovery,
        "worker_restarts": restarts,
        **result.__dict__,
        "line": (
            f"{outage:g}s outage  202s during it {accepted_during}/{len(during)} "
            f"(median {accept_ms[len(accept_ms) // 2]:.0f} ms)  {result.line()}  "
            f"recovered in {recovery:.1f}s ({restarts} worker restarts)"
        ),
    }


def duplicate_delivery(rig: ChaosRig, *, orders: int = 100, copies: int = 3, latency: float = 0.1,
                       timeout: float = 60) -> dict:  # fmt: skip
    """Publish every payment job `copies` times (the checkout's own plus extra copies)."""
    rig.sandbox.reset(latency_seconds=latency, concurrency=0)
    rig.start_workers(2)
    ids = order_ids(rig.post_orders(orders))
    for order_id in ids:
        for _ in range(copies - 1):
            charge_order_task.apply_async((order_id,))
    wait_settled(ids, timeout=timeout)
    time.sleep(1)  # let the last copies be consumed
    result = tally(ids, rig.sandbox)
    per_key = rig.sandbox.charges_per_key()
    claims = OrderEvent.objects.filter(order_id__in=ids, to_status="processing").count()
    rig.stop_all()
    charges = sorted({per_key[f"order-{i}"] for i in ids})
    return {
        "scenario": "duplicates",
        "deliveries": len(ids) * copies,
        "charges_per_order": charges,
        "claims": claims,
        **result.__dict__,
        "line": (
            f"deliveries {len(ids) * copies}  charges per order {charges}  claims {claims}  {result.line()}"
        ),
    }


def same_order_race(rig: ChaosRig, *, runs: int = 200, racers: int = 8) -> dict:
    """`racers` threads charge the same order at once, `runs` times over."""
    rig.sandbox.reset(latency_seconds=0.01, concurrency=0)
    winners: list[int] = []
    ids: list[str] = []
    barrier = threading.Barrier(racers)

    def race(order_id) -> charging.Outcome:
        try:
            barrier.wait()
            return charging.charge_order(order_id, timeout=5)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(racers) as pool:
        for _ in range(runs):
            with transaction.atomic():
                order = checkout.create_order(email=EMAIL, lines=[checkout.Line(rig.sku, 1)], mode="async")
            ids.append(str(order.id))
            outcomes = list(pool.map(race, [order.id] * racers))
            winners.append(outcomes.count(charging.Outcome.PAID))
    result = tally(ids, rig.sandbox)
    extra = sum(rig.sandbox.charges_per_key().values()) - result.paid
    return {
        "scenario": "race",
        "runs": runs,
        "racers": racers,
        "winners_per_run": sorted(set(winners)),
        "extra_charges": extra,
        **result.__dict__,
        "line": (
            f"{runs} runs × {racers} racers  winners per run {sorted(set(winners))}  extra charges {extra}"
        ),
    }


def provider_faults(rig: ChaosRig, *, orders: int = 200, error_rate: float = 0.3, decline_rate: float = 0.05,
                    latency: float = 0.1, timeout: float = 180) -> dict:  # fmt: skip
    """The provider fails transiently 30% of the time and declines 5%."""
    rig.sandbox.reset(
        latency_seconds=latency, concurrency=0, error_rate=error_rate, decline_rate=decline_rate
    )
    rig.start_workers(2)
    rig.start_sweeper()
    ids = order_ids(rig.post_orders(orders))
    wait_settled(ids, timeout=timeout)
    result = tally(ids, rig.sandbox)
    retried = OrderEvent.objects.filter(
        order_id__in=ids, from_status="processing", to_status="accepted"
    ).count()
    declined = Order.objects.filter(pk__in=ids, status="failed", failure_reason__icontains="declined").count()
    rig.stop_all()
    return {
        "scenario": "provider-faults",
        "retried": retried,
        "declined": declined,
        **result.__dict__,
        "line": (
            f"errors {error_rate:.0%} declines {decline_rate:.0%}  paid {result.paid}  "
            f"failed {result.failed} (declined {declined})  retried {retried}  "
            f"charged twice {result.charged_twice}  stuck {result.lost}"
        ),
    }


def poison_messages(rig: ChaosRig, *, healthy: int = 100, poison: int = 10, latency: float = 0.1,
                    timeout: float = 120) -> dict:  # fmt: skip
    """Unreadable messages and jobs for orders that do not exist, among healthy orders."""
    rig.sandbox.reset(latency_seconds=latency, concurrency=0)
    client = sqs_client()
    dlq_before = queue_depth(settings.SQS_DLQ_URL).visible
    garbage = [b"{not json", b"\x00\xff binary", json.dumps({"hello": "world"}).encode()]
    for i in range(poison):
        if i % 2:
            client.send_message(
                QueueUrl=settings.SQS_QUEUE_URL, MessageBody=base64.b64encode(garbage[i % 3]).decode()
            )
        else:
            charge_order_task.apply_async((str(uuid.uuid4()) if i % 4 else "not-an-order-id",))
    started = time.monotonic()
    rig.start_workers(2)
    ids = order_ids(rig.post_orders(healthy))
    wait_settled(ids, timeout=timeout)
    healthy_s = time.monotonic() - started
    result = tally(ids, rig.sandbox)
    unreadable = poison // 2
    deadline = time.monotonic() + timeout
    while queue_depth(settings.SQS_DLQ_URL).visible - dlq_before < unreadable and time.monotonic() < deadline:
        time.sleep(0.5)
    in_dlq = queue_depth(settings.SQS_DLQ_URL).visible - dlq_before
    left = queue_depth(settings.SQS_QUEUE_URL).total
    rig.stop_all()
    return {
        "scenario": "poison",
        "poison": poison,
        "dead_lettered": in_dlq,
        "acked_and_logged": poison - unreadable,
        "left_in_queue": left,
        "healthy_settled_s": healthy_s,
        **result.__dict__,
        "line": (
            f"{poison} poison: {in_dlq} unreadable → DLQ, "
            f"{poison - unreadable} jobs for missing orders acked+logged, "
            f"{left} left in queue  healthy paid {result.paid}/{result.accepted} in {healthy_s:.1f}s  "
            f"charged twice {result.charged_twice}"
        ),
    }


def idempotent_checkout(rig: ChaosRig, *, clients: int = 50) -> dict:
    """`clients` post the same body with the same Idempotency-Key at once."""
    rig.sandbox.reset(latency_seconds=0.1, concurrency=0)
    key = f"double-click-{uuid.uuid4()}"
    before = Order.objects.count()
    responses = rig.post_orders(clients, key=key, threads=clients)
    created = Order.objects.count() - before
    replays = sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses)
    conflicts = sum(r.status_code == 409 for r in responses)
    firsts = sum(r.status_code == 202 and "Idempotent-Replayed" not in r.headers for r in responses)
    other = clients - replays - conflicts - firsts
    return {
        "scenario": "idempotent-checkout",
        "clients": clients,
        "orders_created": created,
        "first": firsts,
        "conflicts_409": conflicts,
        "replays": replays,
        "other": other,
        "line": (
            f"{clients} clients, one key  orders created {created}  409s {conflicts}  "
            f"replays {replays}  other {other}"
        ),
    }


def flash_product(stock: int) -> Product:
    """A fresh limited product for one scenario run, so runs never share stock."""
    sku = f"chaos-flash-{uuid.uuid4().hex[:8]}"
    return Product.objects.create(sku=sku, name=f"Chaos flash {sku[-8:]}", price="10.00", stock=stock)


def post_for_product(
    rig: ChaosRig, sku: str, keys: list[str | None], *, threads: int
) -> list[httpx.Response]:
    """POST one unit of `sku` per key (None: no Idempotency-Key), `threads` at a time."""
    body = {"email": EMAIL, "items": [{"sku": sku, "quantity": 1}]}

    def post(client: httpx.Client, key: str | None) -> httpx.Response:
        return client.post("/api/orders/async", json=body, headers={"Idempotency-Key": key} if key else {})

    with httpx.Client(base_url=rig.web_url, timeout=60) as client, ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda key: post(client, key), keys))


def _code(response: httpx.Response) -> str | None:
    try:
        return response.json().get("code")
    except ValueError:
        return None


@dataclass
class StockTally:
    """A limited product's figures, all read back from the database and the provider's ledger."""

    stock: int
    reserved: int
    sold: int
    left: int
    orders: int  # orders holding the product
    units_in_orders: int
    units_paid: int  # units in paid orders: must equal `sold`
    units_waiting: int  # units in accepted/processing orders: must equal `reserved`
    failed_orders: int
    released_events: int  # final events that say the units went back: one per failed order
    paid_orders: int
    charged_in_ledger: int  # orders of the product with a charge in the provider's ledger
    charged_twice: int

    @property
    def oversold(self) -> int:
        """Units held or sold beyond the stock, by the orders' account or by the counters'."""
        held = max(self.units_paid + self.units_waiting, self.reserved + self.sold)
        return max(0, held - self.stock)

    @property
    def leaked(self) -> int:
        """Units the counters disagree with the orders about (held, sold or released wrongly)."""
        return abs(self.sold - self.units_paid) + abs(self.reserved - self.units_waiting)


def stock_tally(product: Product, sandbox: SandboxClient) -> StockTally:
    product.refresh_from_db()
    assert product.stock is not None
    items = OrderItem.objects.filter(product=product)
    orders = list(Order.objects.filter(pk__in=items.values("order_id")).only("status", "payment_key"))
    units = dict(items.values_list("order_id", "quantity"))
    per_key = sandbox.charges_per_key()
    waiting = (OrderStatus.ACCEPTED, OrderStatus.PROCESSING)
    failed = [o for o in orders if o.status == OrderStatus.FAILED]
    return StockTally(
        stock=product.stock,
        reserved=product.reserved,
        sold=product.sold,
        left=product.left or 0,
        orders=len(orders),
        units_in_orders=sum(units.values()),
        units_paid=sum(units[o.id] for o in orders if o.status == OrderStatus.PAID),
        units_waiting=sum(units[o.id] for o in orders if o.status in waiting),
        failed_orders=len(failed),
        released_events=OrderEvent.objects.filter(
            order_id__in=[o.id for o in failed], to_status=OrderStatus.FAILED, detail__contains="released"
        ).count(),
        paid_orders=sum(o.status == OrderStatus.PAID for o in orders),
        charged_in_ledger=sum(per_key[o.payment_key] > 0 for o in orders),
        charged_twice=sum(per_key[o.payment_key] > 1 for o in orders),
    )


def oversell_race(rig: ChaosRig, *, stock: int = 100, requests: int = 500, threads: int = 50,
                  shared_every: int = 5, latency: float = 0.05, timeout: float = 120) -> dict:  # fmt: skip
    """`requests` buyers (every `shared_every`-th re-using one of a few keys) race for `stock` units."""
    rig.sandbox.reset(latency_seconds=latency, concurrency=0)
    rig.start_workers(2)
    product = flash_product(stock)
    run = uuid.uuid4().hex[:8]
    # Every fifth request shares a key with three others (a double-click, a retry); the rest are unique.
    keys = [f"{run}-shared-{i % 25}" if i % shared_every == 0 else f"{run}-{i}" for i in range(requests)]
    responses = post_for_product(rig, product.sku, keys, threads=threads)
    replayed = [r for r in responses if r.headers.get("Idempotent-Replayed") == "true"]
    fresh = [r for r in responses if r.headers.get("Idempotent-Replayed") != "true"]
    accepted = [r.json()["id"] for r in fresh if r.status_code == 202]
    out_of_stock = sum(r.status_code == 409 and _code(r) == "out_of_stock" for r in fresh)
    in_progress = sum(r.status_code == 409 and _code(r) == "request_in_progress" for r in fresh)
    other = len(fresh) - len(accepted) - out_of_stock - in_progress
    wait_settled(accepted, timeout=timeout)
    result = tally(accepted, rig.sandbox)
    figures = stock_tally(product, rig.sandbox)
    rig.stop_all()
    ledger_disagrees = figures.paid_orders != figures.charged_in_ledger
    return {
        "scenario": "oversell-race",
        "requests": requests,
        "threads": threads,
        "accepted_202": len(accepted),
        "out_of_stock_409": out_of_stock,
        "in_progress_409": in_progress,
        "replays": len(replayed),
        "unexpected_responses": other,
        **{k: v for k, v in figures.__dict__.items() if k != "charged_twice"},
        **result.__dict__,
        "oversold": figures.oversold,
        "leaked": figures.leaked,
        "ledger_disagrees": ledger_disagrees,
        "line": (
            f"{requests} requests / {threads} threads for {stock} units  202s {len(accepted)}  "
            f"409 sold out {out_of_stock}  409 in progress {in_progress}  replays {len(replayed)}  "
            f"other {other}  units sold {figures.sold} reserved {figures.reserved} left {figures.left}  "
            f"oversold {figures.oversold}  paid {result.paid} = charged in ledger "
            f"{figures.charged_in_ledger}  charged twice {result.charged_twice}  lost {result.lost}"
        ),
    }


def stock_release(rig: ChaosRig, *, stock: int = 100, decline_rate: float = 0.3, error_rate: float = 0.1,
                  latency: float = 0.05, threads: int = 20, timeout: float = 180) -> dict:  # fmt: skip
    """The provider declines a share: each declined order's units come back once and sell again.

    Wave 1 buys the whole stock; declined orders release their units. Wave 2 asks for twice what
    came back, so the released units are sold again and the rest is refused.
    """
    rig.sandbox.reset(
        latency_seconds=latency, concurrency=0, decline_rate=decline_rate, error_rate=error_rate
    )
    rig.start_workers(2)
    rig.start_sweeper()
    product = flash_product(stock)
    first = post_for_product(rig, product.sku, [None] * stock, threads=threads)
    ids = order_ids(first)
    wait_settled(ids, timeout=timeout)
    after_first = stock_tally(product, rig.sandbox)
    second = post_for_product(rig, product.sku, [None] * max(2 * after_first.left, 1), threads=threads)
    ids += order_ids(second)
    wait_settled(ids, timeout=timeout)
    result = tally(ids, rig.sandbox)
    figures = stock_tally(product, rig.sandbox)
    rig.stop_all()
    balance = figures.left + figures.reserved + figures.sold
    resold, refused = sum(r.status_code == 202 for r in second), sum(r.status_code == 409 for r in second)
    released_once = abs(figures.failed_orders - figures.released_events)
    return {
        "scenario": "stock-release",
        "decline_rate": decline_rate,
        "released_after_first_wave": after_first.left,
        "resold_202": resold,
        "refused_409": refused,
        **{k: v for k, v in figures.__dict__.items() if k != "charged_twice"},
        **result.__dict__,
        "oversold": figures.oversold,
        "leaked": figures.leaked + released_once + abs(balance - stock),
        "line": (
            f"declines {decline_rate:.0%} errors {error_rate:.0%}  wave 1: {len(order_ids(first))} orders, "
            f"{after_first.failed_orders} failed, {after_first.left} units back  wave 2: "
            f"{resold} resold, {refused} 409  "
            f"failed {figures.failed_orders} released {figures.released_events}  "
            f"left+reserved+sold {figures.left}+{figures.reserved}+{figures.sold} = {balance}/{stock}  "
            f"oversold {figures.oversold}  charged twice {result.charged_twice}  lost {result.lost}"
        ),
    }


def per_customer_race(rig: ChaosRig, *, customers: int = 10, racers: int = 20, limit: int = 2,
                      decline_rate: float = 0.2, latency: float = 0.05,
                      timeout: float = 120) -> dict:  # fmt: skip
    """`customers` emails each send `racers` checkouts of 1 unit at once for a product limited to
    `limit` per customer (stock for everyone): each customer gets `limit` 202s and the rest 409
    `per_customer_limit`; declined orders give their units back to the customer's allowance."""
    rig.sandbox.reset(latency_seconds=latency, concurrency=0, decline_rate=decline_rate)
    rig.start_workers(2)
    product = flash_product(customers * racers)
    Product.objects.filter(pk=product.pk).update(per_customer_limit=limit)
    run = uuid.uuid4().hex[:8]
    emails = [f"racer-{run}-{c}@example.com" for c in range(customers)]

    def post(client: httpx.Client, email: str) -> httpx.Response:
        body = {"email": email, "items": [{"sku": product.sku, "quantity": 1}]}
        return client.post("/api/orders/async", json=body)

    crowd = [email for email in emails for _ in range(racers)]
    with httpx.Client(base_url=rig.web_url, timeout=60) as client, ThreadPoolExecutor(racers) as pool:
        responses = list(pool.map(lambda email: post(client, email), crowd))
    accepted = [r.json()["id"] for r in responses if r.status_code == 202]
    refused = sum(r.status_code == 409 and _code(r) == "per_customer_limit" for r in responses)
    other = len(responses) - len(accepted) - refused
    wait_settled(accepted, timeout=timeout)
    result = tally(accepted, rig.sandbox)
    per_customer = dict.fromkeys(emails, 0)
    for email in Order.objects.filter(pk__in=accepted).values_list("email", flat=True):
        per_customer[email] += 1
    over_limit = sum(max(0, n - limit) for n in per_customer.values())
    # The allowance counts what each customer holds in orders that have not failed.
    held = dict.fromkeys(emails, 0)
    for email in (
        Order.objects.filter(pk__in=accepted)
        .exclude(status=OrderStatus.FAILED)
        .values_list("email", flat=True)
    ):
        held[email] += 1
    counted = dict(CustomerAllowance.objects.filter(product=product).values_list("customer", "units"))
    miscounted = sum(held[e] != counted.get(e, 0) for e in emails)
    rig.stop_all()
    return {
        "scenario": "per-customer-race",
        "customers": customers,
        "racers": racers,
        "limit": limit,
        "accepted_202": len(accepted),
        "per_customer_limit_409": refused,
        "unexpected_responses": other,
        "over_limit": over_limit,
        "miscounted": miscounted,
        **result.__dict__,
        "line": (
            f"{customers} customers × {racers} racers, limit {limit}  202s {len(accepted)}  "
            f"409 per customer {refused}  other {other}  over the limit {over_limit}  "
            f"allowances miscounted {miscounted}  paid {result.paid} failed {result.failed}  "
            f"charged twice {result.charged_twice}  lost {result.lost}"
        ),
    }


SCENARIOS: dict[str, Callable[..., dict]] = {
    "sigkill": sigkill_workers,
    "broker-outage": broker_outage,
    "duplicates": duplicate_delivery,
    "race": same_order_race,
    "provider-faults": provider_faults,
    "poison": poison_messages,
    "idempotent-checkout": idempotent_checkout,
    "oversell-race": oversell_race,
    "stock-release": stock_release,
    "per-customer-race": per_customer_race,
}
