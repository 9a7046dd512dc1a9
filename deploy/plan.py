"""What a sale of R orders per second needs, part by part: `python -m deploy plan --rate 60 1000 10000`.

On paper, from figures this repository measured (each constant below names where) and from AWS's
published limits; nothing here talks to AWS. The lab's figures come from a 2-core machine that
runs the web, the workers, PostgreSQL, the SQS server and the load at once, so a per-order CPU
cost read there is an upper bound of what one Fargate vCPU spends. `docs/capacity-plan.md` is this
command's `--markdown` output with the reasoning around it.

Per order the shop does one accept (web → PostgreSQL, one statement), one SQS job (the relay
sends it in batches and stamps it, one transaction per pass of up to 50 orders), one claim and one
record around a charge of `latency` seconds (worker → provider).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from deploy.settings import DB_INSTANCES, ShopSettings, db_max_connections

# --- measured on this repository's lab (docs/performance.md, docs/exactly-once.md) -------------
WORKER_EFFICIENCY = 0.93  # paid/s ÷ N/latency at N = 100 and 200 threads: 0.925-0.96 in the drain study
WORKER_THREADS_MEASURED = 200  # the most threads per worker process measured (η above, 146 MB RSS)
WORKER_CPU_SECONDS = 0.007  # per charge, the worker's own CPU (~7 ms at 62 charges/s)
WEB_ACCEPT_CPU_SECONDS = 0.008  # per accept (~8 ms at 60 orders/s, publishing then included: an upper bound)
WEB_READ_CPU_SECONDS = 0.002  # per catalogue GET (2.0 ms one at a time in-process)
DB_CPU_SECONDS = 0.003  # PostgreSQL per order: ~2 ms around a charge, ~1 ms for the accept
# The relay's CPU per order published (orders/relay.py): 0.15 cores at 672 orders/s in the lab's
# saturation phase (docs/flash-sale-path.md, 2026-12-04), passes of up to 50 orders in batches of 10.
RELAY_CPU_SECONDS = 0.00022
# One SendMessageBatch inside a region, an assumption (AWS publishes no figure): a relay thread's
# pass of 50 orders is 5 of them in turn plus two statements, so a thread relays ~600 orders/s.
SQS_BATCH_SECONDS = 0.015
# --- planning choices -------------------------------------------------------------------------------
READS_PER_ORDER = 3  # catalogue and status GETs a buyer makes per order (a sale's crowd reads more)
CPU_TARGET = 0.6  # Fargate tasks and the web scale out before 60 % CPU
DB_CPU_TARGET = 0.5  # a primary keeps half its CPU for vacuum, a failover's catch-up and mistakes
WEB_TASK_VCPU = 1.0  # 1024 CPU units, two gunicorn processes
WORKER_TASK_VCPU = 1.0
MIN_RELAY_TASKS = 2  # one per AZ: an AZ's loss leaves a relay running
SQS_REQUESTS_PER_ORDER = (
    0.25 + 1 + 0.1
)  # sends in shared batches (measured 1 per 4), a receive, batched deletes
# --- AWS's published limits ------------------------------------------------------------------------
LAMBDA_ACCOUNT_CONCURRENCY = 1000  # default per region; a quota increase raises it
LAMBDA_SCALE_PER_10_SECONDS = 1000  # new environments per function every 10 s
HOT_ROW_UPDATES_PER_SECOND = 5000  # one product row's conditional UPDATE at ~0.2 ms lock hold (estimate)


@dataclass(frozen=True)
class Need:
    """One part of the shop at one rate: what it needs, and a note when AWS or the design limits it."""

    part: str
    need: str
    note: str = ""


def smallest_instance(vcpu: float) -> str | None:
    """The smallest class with at least `vcpu` (DB_INSTANCES is ordered small to large)."""
    for name, (cores, _) in DB_INSTANCES.items():
        if name.startswith("t4g"):
            continue  # burstable credits run out within a sale
        if cores >= vcpu:
            return name
    return None


def plan(rate: float, *, latency: float = 3.0, provider_limit: int = 0, shop: ShopSettings | None = None):
    """The needs of a sale at `rate` orders/s, one `Need` per part, in the order a request meets them."""
    shop = shop or ShopSettings()
    needs: list[Need] = []
    in_flight = rate * latency

    # the edge and the web
    requests = rate * (1 + READS_PER_ORDER)
    web_vcpu = rate * (WEB_ACCEPT_CPU_SECONDS + READS_PER_ORDER * WEB_READ_CPU_SECONDS)
    web_tasks = max(2, math.ceil(web_vcpu / (WEB_TASK_VCPU * CPU_TARGET)))
    needs.append(Need("ALB + WAF", f"{requests:,.0f} requests/s", "ALB scales itself; pre-warm above ~10k/s"))
    needs.append(
        Need(
            "web",
            f"{web_tasks} tasks of {WEB_TASK_VCPU:g} vCPU ({web_vcpu:.1f} vCPU busy)",
            f"{shop.web_processes}×{shop.web_threads} threads each; at least one per AZ, and after an "
            "AZ's loss the rest run at twice the CPU until the service replaces them",
        )
    )

    # the relay: publishes the accepted orders' jobs
    relay_vcpu = shop.relay_size[0] / 1024
    by_cpu = rate * RELAY_CPU_SECONDS / (relay_vcpu * CPU_TARGET)
    pass_seconds = math.ceil(shop.relay_batch_size / 10) * SQS_BATCH_SECONDS + 0.002
    by_latency = rate / (shop.relay_threads * shop.relay_batch_size / pass_seconds)
    relay_tasks = max(MIN_RELAY_TASKS, math.ceil(round(max(by_cpu, by_latency), 6)))
    needs.append(
        Need(
            "relay",
            f"{relay_tasks} tasks of {relay_vcpu:g} vCPU ({rate / relay_tasks:,.0f} orders/s each)",
            f"{RELAY_CPU_SECONDS * 1000:.2f} ms of CPU per order under {CPU_TARGET:.0%}; "
            f"{shop.relay_threads} threads each, a pass of {shop.relay_batch_size} in "
            f"~{pass_seconds * 1000:.0f} ms; at least {MIN_RELAY_TASKS}, one per AZ; a connection per thread",
        )
    )

    # the queue and the consumers
    sqs_requests = rate * SQS_REQUESTS_PER_ORDER
    needs.append(Need("SQS", f"{sqs_requests:,.0f} API requests/s", "a standard queue: no throughput quota"))
    threads = math.ceil(round(in_flight / WORKER_EFFICIENCY, 6))
    # at least one task per AZ; none past the measured thread count
    worker_tasks = max(2, math.ceil(threads / WORKER_THREADS_MEASURED))
    per_task = max(1, math.ceil(threads / worker_tasks))
    worker_vcpu = rate * WORKER_CPU_SECONDS
    cpu_per_task = worker_vcpu / worker_tasks
    needs.append(
        Need(
            "ECS workers",
            f"{threads:,} threads = {worker_tasks} tasks × {per_task} (--concurrency {per_task})",
            f"{cpu_per_task:.2f} vCPU busy per task of {WORKER_TASK_VCPU:g}"
            + ("" if cpu_per_task <= WORKER_TASK_VCPU * CPU_TARGET else ": CPU-bound, more tasks"),
        )
    )
    lambda_note = (
        f"account default {LAMBDA_ACCOUNT_CONCURRENCY:,}: a quota increase"
        if (in_flight > LAMBDA_ACCOUNT_CONCURRENCY)
        else "within the account's default"
    )
    ramp = math.ceil(in_flight / LAMBDA_SCALE_PER_10_SECONDS) * 10
    needs.append(
        Need(
            "or Lambda",
            f"{math.ceil(in_flight):,} concurrent environments (reached in ~{ramp} s)",
            lambda_note,
        )
    )

    # the provider
    ceiling = provider_limit / latency if provider_limit else None
    provider_note = (
        f"its limit of {provider_limit} pays {ceiling:.2f}/s: the backlog grows {rate - ceiling:,.1f}/s"
        if ceiling is not None and ceiling < rate
        else "the provider must allow this many at once"
    )
    needs.append(Need("payment provider", f"{math.ceil(in_flight):,} charges in flight", provider_note))

    # the database
    db_vcpu = rate * DB_CPU_SECONDS / DB_CPU_TARGET
    instance = smallest_instance(db_vcpu)
    if instance is None:
        db_need = f"{db_vcpu:.0f} vCPU: more than one primary offers"
        db_note = "split the orders across databases (by product), or batch the writes"
    else:
        cores = DB_INSTANCES[instance][0]
        db_need = f"{instance} Multi-AZ ({cores} vCPU; {db_vcpu:.1f} keep it under {DB_CPU_TARGET:.0%})"
        # the accept, the claim and the record per order; the relay's stamp per pass of 50
        db_note = f"{rate * 3 + rate / shop.relay_batch_size:,.0f} commits/s"
    if rate > HOT_ROW_UPDATES_PER_SECOND:
        db_note += f"; one hot product's row caps near {HOT_ROW_UPDATES_PER_SECOND:,}/s: a Redis gate"
    needs.append(Need("PostgreSQL", db_need, db_note))

    # connections through the proxy
    sized = ShopSettings(
        db_instance=instance or "m7g.16xlarge",
        web_max_count=web_tasks,
        max_workers=worker_tasks,
        lambda_max_concurrency=max(1, math.ceil(in_flight)),
        relay_count=relay_tasks,
    )
    busy = sized.busy_connections(rate)
    needs.append(
        Need(
            "RDS Proxy",
            f"{busy:,.0f} connections busy of {sized.proxy_connections:,}",
            f"clients: ecs {sized.client_connections('ecs'):,}, "
            f"lambda {sized.client_connections('lambda'):,}",
        )
    )
    return needs


def connection_arithmetic(shop: ShopSettings) -> list[str]:
    """The stack's own connection budget, line by line, for each consumer mode."""
    lines = [
        f"instance {shop.db_instance}: max_connections ≈ {db_max_connections(shop.db_instance):,} "
        f"(LEAST(memory / 9531392, 5000)); the proxy may open {shop.proxy_max_connections_percent} % "
        f"less {shop.db_reserved_connections} reserved = {shop.proxy_connections:,}",
    ]
    for consumer in ("ecs", "lambda"):
        parts = [
            f"{role} {shop.processes(role)} × {shop.pool_size(role)} = "
            f"{shop.processes(role) * shop.pool_size(role):,}"
            for role in shop.roles(consumer)
        ]
        lines.append(
            f"consumer={consumer}: client connections "
            + " + ".join(parts)
            + f" = {shop.client_connections(consumer):,}"
        )
    for rate in (60, 1000):
        lines.append(
            f"busy at {rate:,} orders/s: {shop.busy_connections(rate):,.1f} "
            f"(≈ 8 ms of transactions per order + {shop.processes('relay') * shop.relay_threads} "
            "relay threads + the sweeper and one-offs)"
        )
    return lines


def table(rates: list[float], *, latency: float, provider_limit: int, markdown: bool = False) -> str:
    """One column per rate, one row per part."""
    plans = {rate: plan(rate, latency=latency, provider_limit=provider_limit) for rate in rates}
    parts = [need.part for need in next(iter(plans.values()))]
    header = ["part", *(f"{rate:,g} orders/s" for rate in rates)]
    if markdown:
        rows = []
        for i, part in enumerate(parts):
            cells = [plans[rate][i] for rate in rates]
            notes = {need.note for need in cells}
            if len(notes) == 1:  # the same note at every rate: once, under the part's name
                rows.append(
                    [part + (f"<br>*{cells[0].note}*" if cells[0].note else ""), *(n.need for n in cells)]
                )
            else:
                rows.append([part, *(_cell(need) for need in cells)])
        lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    out = []
    for rate in rates:
        out.append(f"== {rate:,g} orders/s (charges of {latency:g} s) ==")
        for need in plans[rate]:
            out.append(
                f"  {need.part:<17} {need.need}" + (f"\n  {'':<17} ({need.note})" if need.note else "")
            )
    return "\n".join(out)


def _cell(need: Need) -> str:
    return need.need + (f"<br>*{need.note}*" if need.note else "")
