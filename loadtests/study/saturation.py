"""Phase: the stack's ceiling under wrk's closed loop, for the GET and for both checkouts.

wrk (C; loadtests/wrk.py) keeps `saturation_connections` requests open at all times, each sent as
soon as the last answer came: the rate it reaches is the most the stack answers, not a rate asked
for. Four runs, one after the other, on the study's web (2 gunicorn processes of 32 threads):

    get        GET /api/products, the trivial DRF GET: the framework's own ceiling, which the
               checkouts are compared with; run again last (`get-end`) to show how far the
               machine and the web drifted over the phase (not used in the ratios: the GET after
               the checkouts was slower in every run measured, so a mean would flatter the
               checkouts; docs/flash-sale-path.md)
    unlimited  POST /api/orders/async with the unlimited baskets the Locust crowd sends
    hot        POST /api/orders/async with 1 unit of the one limited product (its stock raised
               first, far past what the run can buy: no answer may be a 409)

The checkout's peak ÷ the GET's says how much of the framework's ceiling an accept keeps; CPU per
process tree (web, the relay, PostgreSQL, SQS server, wrk itself) says where it went. No worker
runs, so the SQS queue fills (it is emptied after each checkout target); whether the relay's
publishing of payment jobs kept up is read from the orders still without `enqueued_at` when wrk
stopped, and a few seconds later. The lab's stack runs with the checkout throttle off (loadtests/bench.py,
UNLIMITED_RATES): one loopback client would otherwise measure the limiter, not the shop.
"""

from __future__ import annotations

import random
import time
from dataclasses import replace

from loadtests import products, wrk
from loadtests.study.context import Lab, orders_tagged, put_on_sale
from sizing.results import SaturationRun

CHECKOUT = "/api/orders/async"
BODIES = 64  # distinct unlimited baskets, sent in turn (the Locust crowd's random ones, seeded)
HOT_UNITS = 1_000_000  # on sale for the hot target: far more than 16 connections accept in a minute
PUBLISH_WATCH_SECONDS = 5.0  # how long to watch the relay publish what was accepted, after wrk stops


def run(lab: Lab) -> list[SaturationRun]:
    binary = wrk.ensure_installed(lambda text: lab.progress.status(text, force=True))
    runs = [_target(lab, binary, "get", "GET", "/api/products", product="")]
    runs.append(_target(lab, binary, "unlimited", "POST", CHECKOUT, product="unlimited"))
    lab.empty_queue()
    put_on_sale(HOT_UNITS)
    runs.append(_target(lab, binary, "hot", "POST", CHECKOUT, product="hot"))
    lab.empty_queue()
    runs.append(_target(lab, binary, "get-end", "GET", "/api/products", product=""))
    get = runs[0].wrk.rate
    lab.write_csv(
        "saturation.csv",
        [
            {"target": r.label, "requests": r.wrk.requests, "seconds": round(r.wrk.seconds, 2),
             "rps": round(r.wrk.rate, 1), "ratio_to_get": round(r.wrk.rate / get, 3) if get else "",
             "p50_ms": r.wrk.p50_ms, "p90_ms": r.wrk.p90_ms, "p99_ms": r.wrk.p99_ms, "max_ms": r.wrk.max_ms,
             "non_2xx": r.wrk.non_2xx, "socket_errors": r.wrk.socket_errors, "orders": r.orders,
             "unpublished_at_end": r.unpublished_at_end, "unpublished_after": r.unpublished_after,
             **{f"cpu_{k}": round(r.cpu.share(k), 2) for k in r.cpu.processes},
             "cpu_machine": round(r.cpu.machine_cores, 2)}
            for r in runs
        ],
    )  # fmt: skip
    return runs


def _bodies(lab: Lab, product: str, tag: str) -> list[dict]:
    if product == "hot":
        return [products.basket("hot", [products.HOT_SKU], tag)]
    rng = random.Random(21)  # the same baskets every run
    return [products.basket("unlimited", lab.skus, tag, rng) for _ in range(BODIES)]


def _target(lab: Lab, binary: str, name: str, method: str, path: str, *, product: str) -> SaturationRun:
    c = lab.config
    tag = f"sat-{name}"
    lua = wrk.script(method=method, bodies=_bodies(lab, product, tag) if product else None)
    meter = lab.meter().start()
    run = wrk.WrkRun(
        lab.data / f"wrk_{name}", lab.host + path, c.saturation_seconds, c.saturation_connections,
        c.saturation_threads, lua, binary,
    ).start()  # fmt: skip
    stats = run.wait(lambda: lab.progress.status(f"{tag}: wrk for {c.saturation_seconds:g} s"))
    # wrk is a child of this process, reaped before the meter stops: only its own rusage counts it.
    cpu = lab.cpu({**meter.stop(), "wrk": round(run.cpu_seconds, 3)})
    result = SaturationRun(
        name=name, method=method, path=path, product=product, connections=c.saturation_connections,
        threads=c.saturation_threads, duration=c.saturation_seconds, wrk=stats, cpu=cpu,
    )  # fmt: skip
    if product:
        result = _publishing(lab, result, tag)
    if result.problems:
        lab.progress.status(f"{result.label}: {'; '.join(result.problems)}", force=True)
    return result


def _publishing(lab: Lab, run: SaturationRun, tag: str) -> SaturationRun:
    """The run's orders, and how many still waited for their payment job to reach SQS (no
    `enqueued_at`) when wrk stopped; then watched until none does, or PUBLISH_WATCH_SECONDS."""
    orders = orders_tagged(tag)
    at_end = left = orders.filter(enqueued_at__isnull=True).count()
    began = time.monotonic()
    while left and time.monotonic() - began < PUBLISH_WATCH_SECONDS:
        lab.progress.status(f"{left:,} accepted orders not yet published")
        time.sleep(0.25)
        left = orders.filter(enqueued_at__isnull=True).count()
    return replace(
        run,
        orders=orders.count(),
        unpublished_at_end=at_end,
        unpublished_after=left,
        publish_caught_up_seconds=round(time.monotonic() - began, 2) if left == 0 else None,
    )
