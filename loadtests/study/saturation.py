"""Phase: the stack's ceiling under wrk's closed loop, for the GET and for both checkouts.

wrk (C; loadtests/wrk.py) keeps `saturation_connections` requests open at all times, each sent as
soon as the last answer came: the rate it reaches is the most the stack answers, not a rate asked
for. Three targets, on the study's web (2 gunicorn processes of 32 threads):

    get        GET /api/products, the trivial DRF GET: the framework's own ceiling, which the
               checkouts are compared with
    unlimited  POST /api/orders/async with the unlimited baskets the Locust crowd sends
    hot        POST /api/orders/async with 1 unit of the one limited product (its stock raised
               first, far past what the run can buy: no answer may be a 409)

They run in `saturation_rounds` rounds, in ORDER and then in reverse (get, unlimited, hot; hot,
unlimited, get; ...): over an even number of rounds every target sits, on average, at the same
moment of the phase, so a machine that speeds up or slows down steadily over the phase shifts
them all alike. A shared virtual machine does: one GET ran 263 and then 355 requests/s minutes
apart, with 5 to 20 % of the cores' time stolen by the hypervisor (docs/flash-sale-path.md). Run one
after the other, the checkouts were compared with a GET of another moment. Each target's rate is
its requests over its seconds, all rounds added up; the report gives each round's ratio too.

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
ORDER = ("get", "unlimited", "hot")  # odd rounds; even rounds run it backwards
TARGETS = {  # name -> (method, path, product)
    "get": ("GET", "/api/products", ""),
    "unlimited": ("POST", CHECKOUT, "unlimited"),
    "hot": ("POST", CHECKOUT, "hot"),
}


def run(lab: Lab) -> list[SaturationRun]:
    binary = wrk.ensure_installed(lambda text: lab.progress.status(text, force=True))
    put_on_sale(HOT_UNITS)  # for every round's hot target
    runs = []
    for number in range(1, lab.config.saturation_rounds + 1):
        for name in ORDER if number % 2 else reversed(ORDER):
            method, path, product = TARGETS[name]
            runs.append(_target(lab, binary, name, method, path, product=product, number=number))
            if product:
                lab.empty_queue()
    get_rates = {r.round: r.wrk.rate for r in runs if r.name == "get"}
    lab.write_csv(
        "saturation.csv",
        [
            {"round": r.round, "target": r.label, "requests": r.wrk.requests,
             "seconds": round(r.wrk.seconds, 2), "rps": round(r.wrk.rate, 1),
             "ratio_to_get": round(r.wrk.rate / get_rates[r.round], 3) if get_rates.get(r.round) else "",
             "p50_ms": r.wrk.p50_ms, "p90_ms": r.wrk.p90_ms, "p99_ms": r.wrk.p99_ms, "max_ms": r.wrk.max_ms,
             "non_2xx": r.wrk.non_2xx, "socket_errors": r.wrk.socket_errors, "orders": r.orders,
             "unpublished_at_end": r.unpublished_at_end, "unpublished_after": r.unpublished_after,
             **{f"cpu_{k}": round(r.cpu.share(k), 2) for k in r.cpu.processes},
             "cpu_stolen": round(r.cpu.steal_cores, 2), "cpu_machine": round(r.cpu.machine_cores, 2)}
            for r in runs
        ],
    )  # fmt: skip
    return runs


def _bodies(lab: Lab, product: str, tag: str) -> list[dict]:
    if product == "hot":
        return [products.basket("hot", [products.HOT_SKU], tag)]
    rng = random.Random(21)  # the same baskets every run
    return [products.basket("unlimited", lab.skus, tag, rng) for _ in range(BODIES)]


def _target(
    lab: Lab, binary: str, name: str, method: str, path: str, *, product: str, number: int
) -> SaturationRun:
    c = lab.config
    tag = f"sat-{name}-r{number}"
    lua = wrk.script(method=method, bodies=_bodies(lab, product, tag) if product else None)
    meter = lab.meter().start()
    run = wrk.WrkRun(
        lab.data / f"wrk_{name}_r{number}", lab.host + path, c.saturation_seconds, c.saturation_connections,
        c.saturation_threads, lua, binary,
    ).start()  # fmt: skip
    stats = run.wait(lambda: lab.progress.status(f"{tag}: wrk for {c.saturation_seconds:g} s"))
    # wrk is a child of this process, reaped before the meter stops: only its own rusage counts it.
    cpu = lab.cpu({**meter.stop(), "wrk": round(run.cpu_seconds, 3)})
    result = SaturationRun(
        name=name, method=method, path=path, product=product, connections=c.saturation_connections,
        threads=c.saturation_threads, duration=c.saturation_seconds, wrk=stats, cpu=cpu, round=number,
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
