"""Phases: async accept latency at the seed's load (no worker) beside a trivial DRF GET, same web, same run.

Locust runs `users` AsyncCheckoutUser and the locustfile's CatalogueUser probes (GET /api/products)
together, so both latencies share the machine, the web and the seconds; the load generator's own
CPU is measured.

`run` (the accept phase): the crowd buys today's baskets of unlimited products, then, on the same
database, one unit of the one limited product each (the flash sale: every accept on one row), with
enough of it on sale for the whole run.

`sold_out` (the sold-out phase): the limited product again, with a third of the run's units on
sale, so that most of the crowd arrives after the last one: the 202s before, the 409 out_of_stock
after, and the GET beside both, all from one Locust run; then the stock is checked for oversell.
"""

from __future__ import annotations

import math

from loadtests.instruments import CpuMeter, LocustRun
from loadtests.study.context import Lab, orders_tagged, put_on_sale, stock_check
from sizing.results import AcceptRun, CpuShares, StockCheck

CLASSES = ["AsyncCheckoutUser", "CatalogueUser"]
HOT = ("--product", "hot")
SOLD_OUT = (*HOT, "--expect-sold-out")
REFUSALS = "POST /api/orders/async [sold out]"  # the locustfile's name for a 409 out_of_stock
HOT_STOCK_MARGIN = 1.5  # the hot run's stock: its target rate × seconds × this, never sold out
SOLD_OUT_AT = 1 / 3  # the sold-out run's stock: what its crowd buys in this share of the run


def _measure(
    lab: Lab, *, tag: str, host: str, database: str, meter: CpuMeter, extra: tuple[str, ...] = ()
) -> tuple[LocustRun, CpuShares]:
    c = lab.config
    locust = LocustRun(
        lab.data / f"locust_{tag}", host, CLASSES, c.users + c.probe_users, c.accept_seconds, tag,
        c.user_rate, extra,
    )  # fmt: skip
    meter.start()
    locust.start()
    locust.wait(lambda: lab.progress.status(f"{database}, {tag}: accepting for {c.accept_seconds:g} s"))
    return locust, lab.cpu(meter.stop(), locust)


def _result(
    lab: Lab,
    locust: LocustRun,
    cpu: CpuShares,
    *,
    database: str,
    orders: int,
    product: str = "unlimited",
    stock: StockCheck | None = None,
) -> AcceptRun:
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
        product=product,
        refusals=locust.stats(REFUSALS) if product == "sold-out" else None,
        stock=stock,
    )


def run(lab: Lab) -> list[AcceptRun]:
    database = lab.bench.database.description
    locust, cpu = _measure(lab, tag="accept", host=lab.host, database=database, meter=lab.meter())
    results = [_result(lab, locust, cpu, database=database, orders=orders_tagged("accept").count())]
    lab.empty_queue()
    results.append(_hot(lab, database))
    lab.empty_queue()
    return results


def _hot(lab: Lab, database: str) -> AcceptRun:
    """Every checkout buys 1 unit of the limited product, with more on sale than the run can buy."""
    c = lab.config
    units = math.ceil(c.users * c.user_rate * c.accept_seconds * HOT_STOCK_MARGIN)
    put_on_sale(units)
    tag = "accept-hot"
    locust, cpu = _measure(lab, tag=tag, host=lab.host, database=database, meter=lab.meter(), extra=HOT)
    stock = stock_check(tag, offered=units)
    return _result(
        lab, locust, cpu, database=database, orders=orders_tagged(tag).count(), product="hot", stock=stock
    )


def sold_out(lab: Lab, *, hot: AcceptRun | None = None) -> AcceptRun:
    """The limited product runs out about a third of the way into the run; the crowd keeps coming.

    Its stock is what the crowd buys in a third of the seconds: at the hot run's measured rate when
    there is one (a busy machine may not reach the target), else at the target rate.
    """
    c = lab.config
    database = lab.bench.database.description
    rate = c.users * c.user_rate
    if hot is not None and hot.throughput > 0:
        rate = min(rate, hot.throughput)
    units = max(1, round(rate * c.accept_seconds * SOLD_OUT_AT))
    put_on_sale(units)
    tag = "soldout"
    locust, cpu = _measure(lab, tag=tag, host=lab.host, database=database, meter=lab.meter(), extra=SOLD_OUT)
    lab.empty_queue()
    stock = stock_check(tag, offered=units)
    orders = orders_tagged(tag).count()
    return _result(lab, locust, cpu, database=database, orders=orders, product="sold-out", stock=stock)
