"""Phase: async accept latency at the seed's load (no worker) beside a trivial DRF GET, same web, same run.

Locust runs `users` AsyncCheckoutUser and the locustfile's CatalogueUser probes (GET /api/products)
together, so both latencies share the machine, the web and the seconds; the load generator's own
CPU is measured. Run on the study's database, then (optionally) on an SQLite file served by a
second small stack: SQS server and web only, no worker, so Django here stays on the first database.
"""

from __future__ import annotations

import os

from devstack.stack import Stack
from loadtests.lab import CpuMeter, LocustRun
from loadtests.study.context import Lab, orders_tagged
from loadtests.study.results import AcceptRun, CpuShares

CLASSES = ["AsyncCheckoutUser", "CatalogueUser"]


def _measure(lab: Lab, *, tag: str, host: str, database: str, meter: CpuMeter) -> tuple[LocustRun, CpuShares]:
    c = lab.config
    locust = LocustRun(
        lab.data / f"locust_{tag}", host, CLASSES, c.users + c.probe_users, c.accept_seconds, tag, c.user_rate
    )
    meter.start()
    locust.start()
    locust.wait(lambda: lab.progress.status(f"{database}: accepting for {c.accept_seconds:g} s"))
    return locust, lab.cpu(meter.stop(), locust)


def _result(lab: Lab, locust: LocustRun, cpu: CpuShares, *, database: str, orders: int) -> AcceptRun:
    c = lab.config
    return AcceptRun(
        database=database,
        users=c.users,
        probe_users=c.probe_users,
        duration=c.accept_seconds,
        checkout=locust.stats("POST /api/orders/async"),
        trivial_get=locust.stats("GET /api/products [probe]"),
        orders=orders,
        cpu=cpu,
    )


def run(lab: Lab) -> list[AcceptRun]:
    database = lab.bench.database.description
    locust, cpu = _measure(lab, tag="accept", host=lab.host, database=database, meter=lab.meter())
    results = [_result(lab, locust, cpu, database=database, orders=orders_tagged("accept").count())]
    lab.empty_queue()
    if lab.config.accept_sqlite and not database.startswith("SQLite"):
        results.append(_on_sqlite(lab))
    return results


def _on_sqlite(lab: Lab) -> AcceptRun:
    """The same run on an SQLite file, served by a stack of its own (its orders are counted by its web)."""
    lab.progress.status("starting a second stack on SQLite")
    database = "SQLite (file, WAL)"
    env = {**lab.bench.stack.env, "DATABASE_URL": f"sqlite:///{lab.dir / 'accept-sqlite.sqlite3'}"}
    for name in ("SQS_ENDPOINT_URL", "SQS_PORT", "WEB_URL"):
        env.pop(name, None)
    stack = Stack.create(lab.dir / "logs" / "accept-sqlite", extra_env=env)
    try:
        stack.start_sqs()
        stack.manage("migrate", "--noinput")
        stack.manage("seed_catalogue")
        stack.manage("create_queues")
        web = stack.start_web()
        pids = {"web": web.pid, "sqs": next(p.pid for p in stack.processes if p.name == "sqs")}
        locust, cpu = _measure(
            lab, tag="accept-sqlite", host=stack.env["WEB_URL"], database=database,
            meter=CpuMeter({**pids, "bench": os.getpid()}),
        )  # fmt: skip
        orders = stack.manage("shell", "--no-imports", "-c", _COUNT_ORDERS).split()[-1]
    finally:
        stack.stop()
    return _result(lab, locust, cpu, database=database, orders=int(orders))


_COUNT_ORDERS = (
    "from orders.models import Order; "
    "print(Order.objects.filter(email__endswith='@accept-sqlite.loadtest.example').count())"
)
