"""Exactly-once scenarios against a provider with real idempotency semantics (issue 19).

Each drives checkouts through the web as customers do: one email per checkout, and a checkout
that gets no final answer (a 5xx, a 504, an unconfirmed 202) is retried once with the same
Idempotency-Key, as the storefront does. Then it waits for every order to be final and asks the
witnesses, none of which is the shop's own account of itself:

- the provider's ledger: charges per key (`charged_twice`);
- the reconciliation (orders.reconciliation) over the scenario's orders: failed-but-charged,
  paid-but-not-charged, charged-but-not-paid;
- the orders table by checkout: a checkout whose email owns two charged orders became two orders
  (`two_orders_per_checkout`).

Import after Django is set up (they read the database).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
import psycopg
from django.conf import settings
from django.db import connection
from django.utils import timezone

from orders.models import Order, OrderEvent, OrderStatus
from orders.reconciliation import reconcile

from .relay_scenarios import relay_and_web_killed
from .scenarios import SCENARIOS, ChaosRig, tally, wait_settled

WITNESSED = ("failed_but_charged", "paid_not_charged", "charged_not_paid", "charged_twice")


@dataclass
class Checkouts:
    """What the customers saw: every answer, by checkout, and the orders the answers named."""

    run: str
    answers: dict[int, list[httpx.Response | None]] = field(default_factory=dict)

    def email(self, index: int) -> str:
        return f"{self.run}-{index}@chaos.example"

    @property
    def order_ids(self) -> list[str]:
        named = {r.json()["id"] for rs in self.answers.values() for r in rs if r is not None and _has_id(r)}
        # And every order the checkouts' emails own, named in an answer or not (a 5xx after a commit).
        placed = Order.objects.filter(email__endswith="@chaos.example", email__startswith=f"{self.run}-")
        return sorted(named | {str(pk) for pk in placed.values_list("id", flat=True)})

    def statuses(self) -> Counter:
        return Counter(
            str(r.status_code) if r is not None else "dropped" for rs in self.answers.values() for r in rs
        )

    def two_orders(self) -> int:
        """Checkouts whose customer owns more than one charged (paid) order."""
        paid = Order.objects.filter(
            email__startswith=f"{self.run}-", email__endswith="@chaos.example", status=OrderStatus.PAID
        )
        return sum(n > 1 for n in Counter(paid.values_list("email", flat=True)).values())


def _has_id(response: httpx.Response) -> bool:
    try:
        return "id" in response.json()
    except ValueError:
        return False


def checkout_crowd(
    rig: ChaosRig, *, sync: int, asynchronous: int, threads: int = 16, tries: int = 3
) -> Checkouts:
    """`sync` + `asynchronous` checkouts, one unit each, with a key and an email of their own; each
    one without a final answer is retried with its key, up to `tries` times in all, as a customer
    pressing the button again would."""
    crowd = Checkouts(uuid.uuid4().hex[:8])
    paths = ["/api/orders/sync"] * sync + ["/api/orders/async"] * asynchronous

    def checkout(client: httpx.Client, index: int) -> None:
        body = {"email": crowd.email(index), "items": [{"sku": rig.sku, "quantity": 1}]}
        headers = {"Idempotency-Key": f"{crowd.run}-{index}"}
        answers: list[httpx.Response | None] = []
        for _ in range(tries):
            try:
                answer: httpx.Response | None = client.post(paths[index], json=body, headers=headers)
            except httpx.TransportError:
                answer = None
            answers.append(answer)
            if answer is not None and _final(answer):
                break
            time.sleep(0.5)
        crowd.answers[index] = answers

    with httpx.Client(base_url=rig.web_url, timeout=60) as client, ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda i: checkout(client, i), range(len(paths))))
    return crowd


def _final(answer: httpx.Response) -> bool:
    """An answer the customer needs not retry: paid, declined, or an async order accepted."""
    if answer.status_code in (201, 402):
        return True
    return answer.status_code == 202 and answer.json().get("mode") == "async"


def provider_idle(rig: ChaosRig, *, timeout: float) -> None:
    """Wait until the provider runs no request (a dripping answer included), or `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = rig.sandbox.stats()
        if not stats["in_flight"] and not stats["waiting"] and not stats.get("dripping", 0):
            return
        time.sleep(0.2)


def witness(rig: ChaosRig, ids: list[str], since: datetime) -> dict:
    """Two witnesses of the scenario's orders against the provider's books: the lab's own count,
    straight from the sandbox's ledger and the orders table, and the shop's reconciliation
    (orders.reconciliation, read-only). A figure is the larger of the two."""
    books = ledger_witness(rig, ids)
    found = reconcile(since=since - timedelta(seconds=5), order_ids=[uuid.UUID(i) for i in ids])
    return {kind: max(books[kind], found.count(kind)) for kind in WITNESSED} | {
        "reconciliation": found.line()
    }


def ledger_witness(rig: ChaosRig, ids: list[str]) -> dict[str, int]:
    """Failed-but-charged, paid-not-charged, charged-not-paid and charged-twice, counted from the
    sandbox's ledger (charges carry their order's id in metadata) and the orders table only."""
    charges: dict[str, list[str]] = {}
    for charge in rig.sandbox.ledger():
        order_id = (charge.get("metadata") or {}).get("order_id")
        if order_id:
            charges.setdefault(order_id, []).append(charge["id"])
    orders = Order.objects.filter(pk__in=ids).values_list("id", "status", "charge_id")
    counts = dict.fromkeys(WITNESSED, 0)
    for order_id, status, charge_id in orders:
        made = charges.get(str(order_id), [])
        counts["charged_twice"] += len(made) > 1
        if status == OrderStatus.FAILED and made:
            counts["failed_but_charged"] += 1
        elif status == OrderStatus.PAID and charge_id not in made:
            counts["paid_not_charged"] += 1
        elif status in (OrderStatus.ACCEPTED, OrderStatus.PROCESSING) and made:
            counts["charged_not_paid"] += 1
    return counts


def _finish(rig: ChaosRig, name: str, crowd: Checkouts, since: datetime, timeout: float, **figures) -> dict:
    ids = crowd.order_ids
    wait_settled(ids, timeout=timeout)
    provider_idle(rig, timeout=60)  # a charge still running there would land after the count
    result = tally(ids, rig.sandbox)
    seen = witness(rig, ids, since)
    stats = rig.sandbox.stats()
    rig.stop_all()
    two = crowd.two_orders()
    statuses = dict(sorted(crowd.statuses().items()))
    return {
        "scenario": name,
        "answers": statuses,
        "two_orders_per_checkout": two,
        "conflicts_409": stats.get("conflicts", 0),
        **figures,
        **result.__dict__,
        **{k: v for k, v in seen.items() if k != "reconciliation"},
        "line": (
            f"answers {statuses}  {' '.join(f'{k} {v}' for k, v in figures.items())}  {result.line()}  "
            f"failed-but-charged {seen['failed_but_charged']}  paid-not-charged {seen['paid_not_charged']}  "
            f"charged-not-paid {seen['charged_not_paid']}  two orders per checkout {two}"
        ),
    }


# --- the scenarios ----------------------------------------------------------------------------


def _crowd_at(rig: ChaosRig, sync: int, asynchronous: int, **knobs) -> tuple[datetime, Checkouts]:
    """The provider set to `knobs` (no concurrency limit), two workers and a sweeper, then the crowd."""
    since = timezone.now()
    rig.sandbox.reset(concurrency=0, **knobs)
    rig.start_workers(2)
    rig.start_sweeper()
    return since, checkout_crowd(rig, sync=sync, asynchronous=asynchronous)


def provider_409(
    rig: ChaosRig,
    *,
    sync: int = 30,
    asynchronous: int = 10,
    latency: float = 1.5,
    slow_rate: float = 0.3,
    slow_seconds: float = 8.0,
    timeout: float = 240,
) -> dict:
    """Sync checkouts time out (SYNC_PAYMENT_TIMEOUT_SECONDS < the charge) and are handed to the
    workers while the provider still works on them; some charges outlast the settle wait too, so
    workers meet the key in flight and get 409s."""
    since, crowd = _crowd_at(
        rig, sync, asynchronous, latency_seconds=latency, slow_rate=slow_rate, slow_seconds=slow_seconds
    )
    return _finish(rig, "provider-409", crowd, since, timeout)


def lost_answer(
    rig: ChaosRig,
    *,
    sync: int = 20,
    asynchronous: int = 60,
    lost_rate: float = 0.2,
    error_after_charge_rate: float = 0.1,
    latency: float = 0.1,
    timeout: float = 240,
) -> dict:
    """The provider charges and the answer never arrives (the connection drops), or arrives as a 500
    that the key then replays for ever: only the same key later, or the books, tell the truth."""
    since, crowd = _crowd_at(
        rig, sync, asynchronous, latency_seconds=latency, lost_answer_rate=lost_rate,
        error_after_charge_rate=error_after_charge_rate,
    )  # fmt: skip
    return _finish(rig, "lost-answer", crowd, since, timeout)


def slow_drip(
    rig: ChaosRig,
    *,
    asynchronous: int = 30,
    drip_rate: float = 1.0,
    error_after_charge_rate: float = 0.3,
    latency: float = 0.1,
    timeout: float = 240,
) -> dict:
    """Every first answer is dripped over twice the order lease, so no per-read timeout fires; a
    third of them are 500s after charging. A call must end inside its lease (the wall-clock
    deadline), and a stale attempt must change nothing (fencing)."""
    drip = 2.0 * settings.ORDER_LEASE_SECONDS
    since, crowd = _crowd_at(
        rig, 0, asynchronous, latency_seconds=latency, drip_rate=drip_rate, drip_seconds=drip,
        error_after_charge_rate=error_after_charge_rate,
    )  # fmt: skip
    ids = crowd.order_ids
    wait_settled(ids, timeout=timeout)
    expired = OrderEvent.objects.filter(order_id__in=ids, detail__startswith="lease expired").count()
    return _finish(rig, "slow-drip", crowd, since, timeout, drip_s=drip, lease_expiries=expired)


def db_restart_after_charge(
    rig: ChaosRig,
    *,
    sync: int = 25,
    asynchronous: int = 50,
    latency: float = 0.4,
    kill_every: float = 1.0,
    timeout: float = 240,
) -> dict:
    """Every database connection but the witness's is killed (pg_terminate_backend) every
    `kill_every` seconds while checkouts are placed and charged: between charges and their records,
    on the sync path (in the request) and the async one (in the workers)."""
    since = timezone.now()
    rig.sandbox.reset(latency_seconds=latency, concurrency=0)
    rig.start_workers(2)
    rig.start_sweeper()
    stop = threading.Event()
    kills: Counter = Counter()
    spared = _own_backend()  # this thread's connection: the witness reads the orders through it
    killer = threading.Thread(target=_kill_connections, args=(stop, kill_every, kills, spared), daemon=True)
    killer.start()
    try:
        crowd = checkout_crowd(rig, sync=sync, asynchronous=asynchronous)
        time.sleep(2 * latency)  # the last charges' records
    finally:
        stop.set()
        killer.join()
        _drop_pooled_connections()
    return _finish(rig, "db-restart-after-charge", crowd, since, timeout, connections_killed=kills["killed"])


def _kill_connections(stop: threading.Event, every: float, kills: Counter, spared: int) -> None:
    params = connection.get_connection_params()
    dsn = {k: params[k] for k in ("host", "port", "user", "dbname", "password") if params.get(k)}
    with psycopg.connect(**dsn, autocommit=True) as conn:
        while not stop.wait(every):
            killed = conn.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND backend_type = 'client backend' AND pid NOT IN (%s)",
                (spared,),
            ).fetchone()[0]
            kills["killed"] += killed


def _drop_pooled_connections() -> None:
    """This process's pooled connections were cut too: open fresh ones for the witness."""
    connection.close()
    if hasattr(connection, "close_pool"):
        connection.close_pool()


def _own_backend() -> int:
    """The backend pid of this thread's Django connection."""
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def all_scenarios() -> dict:
    """Every scenario of `make chaos` by name: scenarios.py's, these, and the relay's."""
    return {
        **SCENARIOS,
        "provider-409": provider_409,
        "lost-answer": lost_answer,
        "slow-drip": slow_drip,
        "db-restart-after-charge": db_restart_after_charge,
        "relay-and-web-killed": relay_and_web_killed,
    }
