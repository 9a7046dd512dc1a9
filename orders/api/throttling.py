"""Per-client rate limits for the API, counted in the cache that every web process shares.

DRF's throttle interface (a 429 through the one exception handler, `Retry-After` from `wait()`),
with a counter of our own: DRF's SimpleRateThrottle reads a list of timestamps from the cache and
writes it back, so two web processes serving one client at once can both read the old list and
let it past its rate. Here each request is one atomic INCR on a fixed-window key in Redis, which
holds across processes and hosts; a window allows at most its rate (a client may use two windows'
worth across a window's edge, which is fine for abuse control).

The rates are settings (CHECKOUT_RATE_LIMIT, ORDER_STATUS_RATE_LIMIT) read on every request, in
DRF's syntax: "20/min", "5/s", "1000/hour"; "0" or empty turns the limit off.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from observability import metrics

log = logging.getLogger(__name__)

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """(requests, seconds) for a DRF rate string, None when the limit is off; ValueError if malformed."""
    if rate is None or rate.strip() in ("", "0"):
        return None
    num, _, period = rate.strip().partition("/")
    if not num.isdigit() or not period or period[0] not in PERIODS:
        raise ValueError(f"{rate!r} is not a rate like '20/min' (or '0' for no limit)")
    if int(num) == 0:
        return None
    return int(num), PERIODS[period[0]]


class SharedRateThrottle(BaseThrottle):
    """At most N requests per client per window of the rate named by `setting`, across every process."""

    scope = ""
    setting = ""

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request, view) -> bool:
        rate = parse_rate(getattr(settings, self.setting))
        if rate is None:
            return True
        limit, window = rate
        now = time.time()
        key = f"throttle:{self.scope}:{self.get_ident(request)}:{int(now // window)}"
        try:
            cache.add(key, 0, timeout=window + 1)
            count = cache.incr(key)
        except Exception:  # the cache is down: serve the request unlimited rather than refuse it
            log.warning("rate limit %s not applied: the cache is unavailable", self.scope, exc_info=True)
            return True
        if count <= limit:
            return True
        self._wait = window - (now % window)
        metrics.throttled(self.scope)
        return False

    def wait(self) -> float | None:
        return self._wait


class CheckoutRateThrottle(SharedRateThrottle):
    """Checkouts (async and sync share one budget): each one costs a provider call."""

    scope = "checkout"
    setting = "CHECKOUT_RATE_LIMIT"


class OrderStatusRateThrottle(SharedRateThrottle):
    """Order status reads: the storefront polls about once a second, so a looser limit."""

    scope = "order-status"
    setting = "ORDER_STATUS_RATE_LIMIT"
