"""Phase: the async accept rate this machine sustains (no worker) with p99 under 100 ms and no failures.

The target rate steps up; the search ends at a rate not reached or at two failing steps in a row.
"""

from __future__ import annotations

import math

from loadtests.study.context import Lab, order_rows
from sizing.results import Capacity, CapacityStep

P99_LIMIT_MS = 100.0


def run(lab: Lab) -> Capacity:
    c = lab.config
    steps: list[CapacityStep] = []
    for target in c.capacity_rates:
        users = max(10, math.ceil(target / 4))
        tag = f"cap-{target:g}".replace(".", "-")
        lab.progress.status(f"target {target:g} orders/s with {users} users")
        locust = lab.load(
            tag, ["AsyncCheckoutUser"], users=users, seconds=c.capacity_seconds, user_rate=target / users
        )
        lab.empty_queue()
        created = sorted(r["created_at"] for r in order_rows(tag))
        span = created[-1] - created[0] if len(created) > 1 else 0.0
        checkout = locust.stats("POST /api/orders/async")
        step = CapacityStep(
            target=target,
            users=users,
            checkout=checkout,
            accepted=len(created),
            accept_rate=(len(created) - 1) / span if span else 0.0,
            ok=checkout.p99_ms < P99_LIMIT_MS and checkout.failures == 0,
        )
        steps.append(step)
        # One noisy step does not end the search; two failing in a row, or a rate not reached, do.
        if step.accept_rate < 0.85 * target or (len(steps) > 1 and not steps[-2].ok and not step.ok):
            break
    lab.write_csv(
        "capacity.csv",
        [
            {"target": s.target, "users": s.users, "accepted": s.accepted, "accept_rate": s.accept_rate,
             "p50_ms": s.checkout.median_ms, "p99_ms": s.checkout.p99_ms, "failures": s.checkout.failures,
             "ok": s.ok}
            for s in steps
        ],
    )  # fmt: skip
    return Capacity(p99_limit_ms=P99_LIMIT_MS, steps=steps)
