"""Flash-sale checkout scenarios for Locust.

    locust -f loadtests/locustfile.py --host http://127.0.0.1:8000                  # web UI
    locust -f loadtests/locustfile.py --host http://127.0.0.1:8000 --headless \\
        -u 20 -r 20 -t 60s AsyncCheckoutUser                                       # the seed's load
    locust -f loadtests/locustfile.py --host ... --headless --tags sync -u 20 -t 60s
    locust -f loadtests/locustfile.py --host ... --headless AsyncCheckoutUser \\
        --burst-rate 60 --calm-rate 5                                              # a flash sale

Pick the scenario with Locust's own means: user class names on the command line, `--tags sync` /
`--tags async`, or `--class-picker` in the web UI. Options this file adds (also as LOCUST_* env vars,
and in the web UI): `--user-rate`, `--order-tag`, `--poll-until-paid`, and the flash-sale knobs
`--burst-rate`, `--calm-rate`, `--calm-seconds`, `--burst-seconds`.

`FlashSaleShape` is picked up automatically by headless Locust, as every shape in a locustfile is.
Without `--burst-rate` it simply follows `-u`, `-r` and `-t`, so plain runs behave as usual.
"""

from __future__ import annotations

import math
import random
import sys
import time
import uuid

from locust import LoadTestShape, events, tag, task
from locust.contrib.fasthttp import FastHttpUser

from loadtests.pacing import next_arrival  # Locust puts the working directory (the repo) on sys.path

CLIENT_TIMEOUT_SECONDS = 30.0  # the seed's customers gave up after 30 s
MAX_LINES = 3
MAX_QUANTITY = 3


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
    """A shopper: reads the catalogue once, then checks out random baskets."""

    abstract = True
    network_timeout = CLIENT_TIMEOUT_SECONDS
    connection_timeout = CLIENT_TIMEOUT_SECONDS
    checkout_path = ""

    wait_time = _paced

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.order_tag = _safe_label(options.order_tag if options is not None else "adhoc")
        self.skus: list[str] = []
        with self.client.get("/api/products", name="GET /api/products", catch_response=True) as response:
            if response.status_code == 200:
                # The seed's measurements are about the payment queue: buy unlimited products only,
                # so a sold-out flash product does not turn load into 409s.
                results = response.json()["results"]
                self.skus = [p["sku"] for p in results if p.get("left", None) is None]
            if not self.skus:
                response.failure(f"no products to buy (HTTP {response.status_code})")

    def basket(self) -> dict:
        lines = random.sample(self.skus, k=min(len(self.skus), random.randint(1, MAX_LINES)))
        return {
            # The tag in the domain lets the experiment find this run's orders in the database.
            "email": f"buyer-{uuid.uuid4().hex[:12]}@{self.order_tag}.loadtest.example",
            "items": [{"sku": sku, "quantity": random.randint(1, MAX_QUANTITY)} for sku in lines],
        }

    def place_order(self, expected: dict[int, str | None]) -> dict | None:
        """POST a basket; `expected` maps HTTP status to None (success) or a failure message."""
        if not self.skus:
            self.on_start()
            return None
        with self.client.post(
            self.checkout_path, json=self.basket(), name=f"POST {self.checkout_path}", catch_response=True
        ) as response:
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
                events.request.fire(
                    request_type="ORDER",
                    name=f"accepted → {status}",
                    response_time=(time.monotonic() - started) * 1000,
                    response_length=0,
                    exception=None if status == "paid" else Exception("declined"),
                    context={},
                )
                return
            time.sleep(interval)  # gevent-patched: other users run meanwhile
        events.request.fire(
            request_type="ORDER",
            name="accepted → still open",
            response_time=(time.monotonic() - started) * 1000,
            response_length=0,
            exception=Exception(f"not final after {timeout:g}s"),
            context={},
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


def _safe_label(text: str) -> str:
    """A DNS-label-safe version of `text` (it goes into the email's domain)."""
    label = "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
    return label[:40] or "adhoc"
