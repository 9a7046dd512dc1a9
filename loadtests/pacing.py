"""When a paced Locust user starts its next task (kept apart from the locustfile, which imports
Locust and with it gevent's monkey-patching, so that tests can read it).

Shoppers click when they click: each user's tasks are a Poisson process (exponential gaps, drawn
afresh every time), so that 20 users at 3/s are 60 arrivals a second as a crowd makes them, and
every request, a probe's too, meets the others' bursts by chance alone. A fixed period per user,
even from a random phase, made the same users meet every period for the whole run: measured in
the lab's accept run, the checkouts slower than 18 ms all fell at one phase of the 333 ms period,
and whether the probe's GETs shared it decided the GET's p99 (7 to 350 ms across runs). Locust's
`constant_throughput` is worse still: it starts every user's period together (all 22 requests of
a run fell in the same 20 ms of each period).
"""

from __future__ import annotations

import random


def next_arrival(previous: float | None, now: float, rate: float) -> float:
    """The next task's start: an exponential gap (mean 1 / `rate`) after the previous start.

    A slow answer delays the next task to `now`, and never bunches the ones after it (one task at a
    time, each gap drawn from the late start, none skipped to catch up).
    """
    return max((now if previous is None else previous) + random.expovariate(rate), now)
