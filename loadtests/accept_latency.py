"""Accept latency with and without a hot limited product: does the stock row slow the 202 down?

``python -m loadtests.accept_latency`` starts its own stack (SQS emulator, gunicorn as
config.processes starts it; no workers, so nothing but the accept path runs) on a fresh database
(PostgreSQL whenever one answers, else SQLite; loadtests/bench.py), then posts one-line orders open-loop at
``--rate`` per second (the seed's 60) in alternating phases:

- ``unlimited``: every order buys an unlimited product (no stock row is touched);
- ``hot``: every order buys the same limited product (one conditional UPDATE on one row each).

It prints p50/p99/max accept latency per phase, then where the time goes in the hot case: the same
checkout run in this process at the same rate, timing the stock UPDATE (lock wait included) and
how long the row stays locked (from that UPDATE to the end of COMMIT).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from devstack.stack import BASE_DIR, Stack

from .bench import PRODUCTION_LIKE, UNLIMITED_RATES, fresh_database

UNLIMITED_SKU = "travel-mug"
HOT_SKU = "latency-hot"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(values: list[float]) -> str:
    return (
        f"n {len(values):>5}  p50 {percentile(values, 50):6.1f} ms  p99 {percentile(values, 99):6.1f} ms  "
        f"max {max(values):6.1f} ms"
    )


def open_loop(rate: float, seconds: float, call) -> list[float]:
    """Start `call` at `rate` per second for `seconds` whatever the answers take; return each one's ms."""
    count = int(rate * seconds)
    started = time.perf_counter()
    timings: list[float] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        t0 = time.perf_counter()
        call()
        with lock:
            timings.append((time.perf_counter() - t0) * 1000)

    with ThreadPoolExecutor(max(8, int(rate))) as pool:
        list(pool.map(one, range(count)))
    return timings


def http_phase(web_url: str, sku: str, rate: float, seconds: float) -> list[float]:
    """One new connection per order, as a crowd of browsers would open (and no stale keep-alives)."""
    host, port = web_url.removeprefix("http://").split(":")
    body = json.dumps({"email": "latency@example.com", "items": [{"sku": sku, "quantity": 1}]})

    def post() -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            conn.request("POST", "/api/orders/async", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            if response.status != 202:
                raise SystemExit(f"accept failed: HTTP {response.status} {response.read()[:200]!r}")
            response.read()
        finally:
            conn.close()

    return open_loop(rate, seconds, post)


def in_process_breakdown(rate: float, seconds: float) -> dict[str, list[float]]:
    """The hot checkout in this process: total, stock UPDATE (incl. lock wait), row lock held."""
    from django.db import connection, connections

    from orders import checkout

    # Publishing is after the commit and off the request path; the figures here are the transaction's.
    checkout.publish_in_background = lambda order_id: None  # type: ignore[assignment]
    parts: dict[str, list[float]] = {"checkout": [], "stock_update": [], "row_locked": []}
    lock = threading.Lock()

    def checkout_once() -> None:
        update_started: list[float] = []

        def timed(execute, sql, params, many, context):
            is_stock = sql.startswith('UPDATE "shop_product"')
            t0 = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                if is_stock:
                    update_started.append(t0)
                    with lock:
                        parts["stock_update"].append((time.perf_counter() - t0) * 1000)

        t0 = time.perf_counter()
        try:
            with connection.execute_wrapper(timed):
                checkout.place_async_order(email="latency@example.com", lines=[checkout.Line(HOT_SKU, 1)])
            done = time.perf_counter()
            with lock:
                parts["checkout"].append((done - t0) * 1000)
                parts["row_locked"].append((done - update_started[0]) * 1000)
        finally:
            connections.close_all()

    open_loop(rate, seconds, checkout_once)
    return parts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=60, help="orders per second (default: the seed's 60)")
    parser.add_argument("--seconds", type=float, default=20, help="length of each phase")
    parser.add_argument("--rounds", type=int, default=2, help="unlimited/hot phase pairs, alternated")
    args = parser.parse_args(argv)

    run_dir = BASE_DIR / "reports" / f"latency-{datetime.now():%Y%m%d-%H%M%S}"
    run_dir.mkdir(parents=True, exist_ok=True)
    database = fresh_database(run_dir, f"flashsale_latency_{os.getpid()}")
    database_url = database.url
    env = {
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        **PRODUCTION_LIKE,
        **UNLIMITED_RATES,
    }
    stack = Stack.create(run_dir / "logs", extra_env=env)
    try:
        stack.start_sqs()
        stack.env["PAYMENT_PROVIDER_URL"] = "http://127.0.0.1:9"  # no charges run here
        os.environ.update({k: stack.env[k] for k in ("SQS_ENDPOINT_URL", "PAYMENT_PROVIDER_URL")})
        os.environ.update(env)
        stack.manage("migrate", "--noinput")
        stack.manage("seed_catalogue")
        stack.manage("create_queues")
        stack.start_web()
        import django

        django.setup()
        from shop.models import Product

        # Enough units never to sell out: every order contends for the row, none is refused.
        Product.objects.create(sku=HOT_SKU, name="Latency hot", price="10.00", stock=10**9)
        print(f"accept latency: {database.description}, {args.rate:g} orders/s, "
              f"{args.rounds} × {args.seconds:g} s per phase", flush=True)  # fmt: skip
        http_phase(stack.env["WEB_URL"], UNLIMITED_SKU, args.rate, 3)  # warm up
        timings: dict[str, list[float]] = {"unlimited": [], "hot": []}
        for _ in range(args.rounds):
            timings["unlimited"] += http_phase(stack.env["WEB_URL"], UNLIMITED_SKU, args.rate, args.seconds)
            timings["hot"] += http_phase(stack.env["WEB_URL"], HOT_SKU, args.rate, args.seconds)
        for name, values in timings.items():
            print(f"HTTP 202, {name + ' product':<18} {summary(values)}", flush=True)
        parts = in_process_breakdown(args.rate, args.seconds)
        for name, values in parts.items():
            print(f"in-process hot, {name:<13} {summary(values)}", flush=True)
        hot = Product.objects.get(sku=HOT_SKU)
        print(f"hot product: {hot.reserved} units reserved, mean of the two HTTP phases' medians "
              f"{statistics.mean([percentile(v, 50) for v in timings.values()]):.1f} ms")  # fmt: skip
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
