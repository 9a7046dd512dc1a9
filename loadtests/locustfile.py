"""Flash-sale checkout scenarios for Locust.

    locust -f loadtests/locustfile.py --host http://127.0.0.1:8000                  # web UI
    locust -f loadtests/locustfile.py --host http://127.0.0.1:8000 --headless \\
        -u 20 -r 20 -t 60s AsyncCheckoutUser                                       # the seed's load
    locust -f loadtests/locustfile.py --host ... --headless --tags sync -u 20 -t 60s
    locust -f loadtests/locustfile.py --host ... --headless -u 20 -t 60s SyncQueueCheckoutUser   # in line
    locust -f loadtests/locustfile.py --host ... --headless AsyncCheckoutUser \\
        --burst-rate 60 --calm-rate 5                                              # a flash sale
    locust -f loadtests/locustfile.py --host ... --headless -u 20 -t 30s AsyncCheckoutUser \\
        --product hot --expect-sold-out                                            # ... of one product

Pick the scenario with Locust's own means: user class names on the command line, `--tags sync` /
`--tags sync-queue` / `--tags async`, or `--class-picker` in the web UI. Options this file adds
(also as LOCUST_* env vars, and in the web UI): `--user-rate`, `--order-tag`, `--poll-until-paid`,
what to buy (`--product`, `--hot-sku`, `--expect-sold-out`), and the flash-sale knobs
`--burst-rate`, `--calm-rate`, `--calm-seconds`, `--burst-seconds`.

`--product unlimited` (the default) buys today's baskets of unlimited products; `--product hot` buys
one unit of the one limited product at every checkout (loadtests/products.py). A 409 `out_of_stock`
is a failure, unless the run expects the product to sell out (`--expect-sold-out`): then it is the
answer the crowd after the last unit should get, counted as a success under its own name,
`POST /api/orders/async [sold out]`, so that its latency is reported apart from the 202s'.

`FlashSaleShape` is picked up automatically by headless Locust, as every shape in a locustfile is.
Without `--burst-rate` it simply follows `-u`, `-r` and `-t`, so plain runs behave as usual.
"""

from __future__ import annotations

import math
import sys
import time
import uuid

from locust import LoadTestShape, events, tag, task
from locust.contrib.fasthttp import FastHttpUser

# Locust puts the working directory (the repo) on sys.path.
from loadtests import products
from loadtests.pacing import next_arrival

CLIENT_TIMEOUT_SECONDS = 30.0  # the seed's customers gave up after 30 s
SOLD_OUT = "out_of_stock"  # the code of the 409 refusing a limited product that has too few units left


@events.init_command_line_parser.add_listener
def _add_arguments(parser) -> None:
    group = parser.add_argument_group("flash-sale checkout")
    group.add_argument(
        "--user-rate",
        type=float,
        default=3.0,
        env_var="LOCUST_USER_RATE",
        help="Checkouts per second each user aims for (a user never exceeds it; slow answers slow it down). "
        "20 users × 3/s is the seed's ~60 orders/s.",
    )
    group.add_argument(
        "--order-tag",
        default="adhoc",
        env_var="LOCUST_ORDER_TAG",
        help="Label put in every order's email domain, so a run's orders can be found in the database.",
    )
    group.add_argument(
        "--product",
        choices=products.PRODUCTS,
        default="unlimited",
        env_var="LOCUST_PRODUCT",
        help="What every checkout buys: 'unlimited' (1-3 lines of unlimited products, the seed's baskets) "
        "or 'hot' (1 unit of the one limited product, --hot-sku: the flash sale).",
    )
    group.add_argument(
        "--hot-sku",
        default=products.HOT_SKU,
        env_var="LOCUST_HOT_SKU",
        help="The limited product that --product hot buys (the seeded catalogue's Flash Sneakers).",
    )
    group.add_argument(
        "--expect-sold-out",
        action="store_true",
        default=False,
        env_var="LOCUST_EXPECT_SOLD_OUT",
        help="A 409 out_of_stock is an expected answer (the product sells out during the run), reported "
        "as 'POST <path> [sold out]'; without it, a failure.",
    )
    group.add_argument(
        "--poll-until-paid",
        action="store_true",
        default=False,
        env_var="LOCUST_POLL_UNTIL_PAID",
        help="Async users follow each order (GET /api/orders/<id>) until it is paid or failed.",
    )
    group.add_argument("--poll-interval", type=float, default=1.0, env_var="LOCUST_POLL_INTERVAL")
    group.add_argument(
        "--poll-timeout",
        type=float,
        default=120.0,
        env_var="LOCUST_POLL_TIMEOUT",
        help="Give up following an order after this long (counted as a failure of the poll).",
    )
    group.add_argument(
        "--burst-rate",
        type=float,
        default=0.0,
        env_var="LOCUST_BURST_RATE",
        help="FlashSaleShape: orders/s at the peak of the sale. 0 (default): no sale, follow -u/-r/-t.",
    )
    group.add_argument(
        "--calm-rate",
        type=float,
        default=2.0,
        env_var="LOCUST_CALM_RATE",
        help="FlashSaleShape: orders/s before and after the burst.",
    )
    group.add_argument("--calm-seconds", type=float, default=30.0, env_var="LOCUST_CALM_SECONDS")
    group.add_argument("--burst-seconds", type=float, default=60.0, env_var="LOCUST_BURST_SECONDS")


def _user_rate(environment) -> float:
    options = environment.parsed_options
    return options.user_rate if options is not None else 3.0


def _paced(user) -> float:
    """Seconds to wait before `user`'s next task: random arrivals at `--user-rate` (loadtests/pacing.py)."""
    now = time.monotonic()
    user._next_slot = next_arrival(getattr(user, "_next_slot", None), now, _user_rate(user.environment))
    return user._next_slot - now


class CheckoutUser(FastHttpUser):
    """A shopper: reads the catalogue once, then checks out random baskets (or the hot product)."""

    abstract = True
    network_timeout = CLIENT_TIMEOUT_SECONDS
    connection_timeout = CLIENT_TIMEOUT_SECONDS
    checkout_path = ""

    wait_time = _paced

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.order_tag = _safe_label(options.order_tag if options is not None else "adhoc")
        self.product = options.product if options is not None else "unlimited"
        self.expect_sold_out = bool(options is not None and options.expect_sold_out)
        hot_sku = options.hot_sku if options is not None else products.HOT_SKU
        self.skus: list[str] = []
        with self.client.get("/api/products", name="GET /api/products", catch_response=True) as response:
            if response.status_code == 200:
                results = response.json()["results"]
                # Unlimited: the seed's measurements are about the payment queue, so a sold-out flash
                # product must not turn their load into 409s. Hot: that one limited product only.
                self.skus = (
                    [p["sku"] for p in results if p["sku"] == hot_sku and p.get("left") is not None]
                    if self.product == "hot"
                    else [p["sku"] for p in results if p.get("left", None) is None]
                )
            if not self.skus:
                wanted = f"limited product {hot_sku!r}" if self.product == "hot" else "products to buy"
                response.failure(f"no {wanted} (HTTP {response.status_code})")

    def basket(self) -> dict:
        # The tag in the email's domain lets the experiment find this run's orders in the database.
        return products.basket(self.product, self.skus, self.order_tag)

    def place_order(self, expected: dict[int, str | None]) -> dict | None:
        """POST a basket; `expected` maps HTTP status to None (success) or a failure message.

        A 409 `out_of_stock` is a success named `POST <path> [sold out]` in a run that expects the
        product to sell out (`--expect-sold-out`), a failure in any other.
        """
        if not self.skus:
            self.on_start()
            return None
        with self.client.post(
            self.checkout_path, json=self.basket(), name=f"POST {self.checkout_path}", catch_response=True
        ) as response:
            if response.status_code == 409 and _error_code(response) == SOLD_OUT:
                if self.expect_sold_out:
                    response.request_meta["name"] = f"POST {self.checkout_path} [sold out]"
                    response.success()
                else:
                    response.failure("HTTP 409 out_of_stock (the run does not expect a sell-out)")
                return None
            if response.status_code not in expected:
                response.failure(f"HTTP {response.status_code}")
                return None
            message = expected[response.status_code]
            if message is not None:
                response.failure(message)
                return None
            return response.json()


class SyncCheckoutUser(CheckoutUser):
    """Checks out on the synchronous endpoint: the answer waits for the payment provider."""

    checkout_path = "/api/orders/sync"

    @tag("sync")
    @task
    def checkout(self) -> None:
        self.place_order({201: None, 402: "declined", 504: "provider too slow (504)"})


class SyncQueueCheckoutUser(CheckoutUser):
    """A sync checkout that waits in the shop's checkout queue, as the storefront does.

    One Idempotency-Key per checkout; a 503 `checkout_queue` is an expected answer (a success named
    `POST /api/orders/sync [checkout_queue]`), after which the user waits its Retry-After and tries
    again with the same key, until a final answer (201 paid, or a failure: 402, 504, any other).
    Each checkout also reports `CHECKOUT first try → final answer` (its whole wait, in line and
    charging), and each request that reached the client's 30 s timeout is a failure named
    `POST /api/orders/sync [past timeout]`, besides its own row.
    """

    checkout_path = "/api/orders/sync"

    @tag("sync-queue")
    @task
    def checkout(self) -> None:
        if not self.skus:
            self.on_start()
            return
        body, key = self.basket(), str(uuid.uuid4())
        started = time.monotonic()
        while True:
            status, wait = self._try(body, key)
            if wait is None:
                break
            time.sleep(wait)  # gevent-patched: other users run meanwhile
        _record(
            "CHECKOUT",
            "first try → final answer",
            time.monotonic() - started,
            None if status == 201 else Exception(f"HTTP {status}"),
        )

    def _try(self, body: dict, key: str) -> tuple[int, float | None]:
        """One request: its status, and the seconds to wait before the next try (None: final)."""
        name = f"POST {self.checkout_path}"
        began = time.monotonic()
        with self.client.post(
            self.checkout_path, json=body, headers={"Idempotency-Key": key}, name=name, catch_response=True
        ) as response:
            elapsed = time.monotonic() - began
            if response.status_code == 503 and _error_code(response) == "checkout_queue":
                response.request_meta["name"] = f"{name} [checkout_queue]"
                response.success()
                return 503, float(response.headers.get("Retry-After") or 1)
            if response.status_code == 201:
                response.success()
            else:
                response.failure(f"HTTP {response.status_code}")
        if elapsed >= CLIENT_TIMEOUT_SECONDS or response.status_code == 0:
            _record(
                "POST",
                f"{name} [past timeout]",
                elapsed,
                Exception(f"no answer within {CLIENT_TIMEOUT_SECONDS:g} s"),
            )
        return response.status_code, None


class AsyncCheckoutUser(CheckoutUser):
    """Checks out on the asynchronous endpoint (202 at once); optionally follows the order until paid."""

    checkout_path = "/api/orders/async"

    @tag("async")
    @task
    def checkout(self) -> None:
        order = self.place_order({202: None})
        options = self.environment.parsed_options
        if order is not None and options is not None and options.poll_until_paid:
            self.follow(order["id"], interval=options.poll_interval, timeout=options.poll_timeout)

    def follow(self, order_id: str, *, interval: float, timeout: float) -> None:
        """Poll the order until it is final; a bounded number of polls."""
        started = time.monotonic()
        for _ in range(max(1, math.ceil(timeout / max(interval, 0.01)))):
            with self.client.get(
                f"/api/orders/{order_id}", name="GET /api/orders/[id]", catch_response=True
            ) as response:
                status = response.json().get("status") if response.status_code == 200 else None
                if status is None:
                    response.failure(f"HTTP {response.status_code}")
                    return
            if status in ("paid", "failed"):
                _record(
                    "ORDER",
                    f"accepted → {status}",
                    time.monotonic() - started,
                    None if status == "paid" else Exception("declined"),
                )
                return
            time.sleep(interval)  # gevent-patched: other users run meanwhile
        _record(
            "ORDER",
            "accepted → still open",
            time.monotonic() - started,
            Exception(f"not final after {timeout:g}s"),
        )


class CatalogueUser(FastHttpUser):
    """A probe beside the shoppers: the trivial DRF GET (`GET /api/products`) served by the same web.

    Its latency is the framework's floor under the same load, the yardstick for the checkout's.
    It joins a run only when named on the command line, and then as exactly 2 users (the rest of
    -u go to the other classes named); unnamed, weight 0 makes Locust drop it, so plain runs and
    `--tags` runs are unchanged. Its requests are named `GET /api/products [probe]`, apart from the
    shoppers' own first read of the catalogue.
    """

    weight = 0
    fixed_count = 2 if "CatalogueUser" in sys.argv else 0
    network_timeout = CLIENT_TIMEOUT_SECONDS
    connection_timeout = CLIENT_TIMEOUT_SECONDS

    wait_time = _paced

    @tag("probe")
    @task
    def catalogue(self) -> None:
        self.client.get("/api/products", name="GET /api/products [probe]")


class FlashSaleShape(LoadTestShape):
    """Calm, then a burst to `--burst-rate` orders/s, then calm again; or plain -u/-r/-t without it.

    The rate is turned into users through `--user-rate` (each user's ceiling of checkouts per second).
    """

    use_common_options = True  # it reads -u/-r/-t when no sale is asked for

    def tick(self):
        options = self.runner.environment.parsed_options
        elapsed = self.get_run_time()
        if not options.burst_rate:
            if options.run_time and elapsed >= options.run_time:
                return None
            return options.num_users or 1, options.spawn_rate or 1
        calm, burst = options.calm_seconds, options.burst_seconds
        if elapsed < calm:
            rate = options.calm_rate
        elif elapsed < calm + burst:
            rate = options.burst_rate
        elif elapsed < 2 * calm + burst:
            rate = options.calm_rate
        else:
            return None
        users = max(1, math.ceil(rate / options.user_rate))
        return users, max(users, 1)  # reach each step's users within about a second


def _record(request_type: str, name: str, seconds: float, exception: Exception | None) -> None:
    """One figure of the user's own (a wait, not a request) in Locust's statistics, beside its requests."""
    events.request.fire(
        request_type=request_type,
        name=name,
        response_time=seconds * 1000,
        response_length=0,
        exception=exception,
        context={},
    )


def _error_code(response) -> str | None:
    """The `code` of an API error body (core/errors.py), or None when the body is not one."""
    try:
        body = response.json()
    except (ValueError, TypeError):
        return None
    return body.get("code") if isinstance(body, dict) else None


def _safe_label(text: str) -> str:
    """A DNS-label-safe version of `text` (it goes into the email's domain)."""
    label = "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
    return label[:40] or "adhoc"
