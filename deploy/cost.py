"""Monthly cost of charging payment jobs on ECS workers vs the Lambda consumer, and of the shop around them.

Inputs, none guessed in code: (a) the stack's own task sizes and scaling bounds (`ShopSettings`),
(b) the per-worker-thread rate the load lab measured (`python -m deploy recommend --report ...`,
else the ideal 1 / latency), (c) list prices in `deploy/prices.json` (dated, with source pages).

Model, per month (730 h):
- ECS consumer: worker task-hours = max(min_workers * 730, orders ÷ task rate) (autoscaling keeps
  busy tasks near full; a lower bound for spiky sales), * Fargate vCPU + GB prices; SQS receives
  (one per job under load, conservative), deletes in batches of 10 (AckBatcher), and each task's
  idle long polls (20 s: 3 a minute); worker logs.
- Lambda consumer: invocations = orders ÷ batch size; duration = orders * (provider latency +
  overhead) * memory, where the provider's wait is billed (with a one-at-a-time provider and the
  event source's minimum concurrency of 2, a charge waits for the other: twice the latency);
  the free tier (1M requests, 400k GB-s) applies; the event source's pollers' receives (5 pollers
  long-polling 20 s when idle) and one delete per batch; function logs.
- Both: the relay's sends in batches of 10 (`orders.sqs_jobs`); SQS's 1M free requests apply to the
  account's total.
- The rest of the shop (same for both): ALB and its WAF and access logs, web, relay and sweeper
  tasks, RDS Multi-AZ behind RDS Proxy, Redis with a replica, a NAT gateway per AZ, secrets, alarms.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from deploy.settings import DB_INSTANCES, ShopSettings

PRICES = Path(__file__).with_name("prices.json")
MILLION = 1_000_000
SEND_BATCH = ACK_BATCH = 10
IDLE_POLLS_PER_HOUR = 3 * 60  # one 20 s long poll after another
LAMBDA_POLLERS = 5  # the SQS event source starts with five pollers
LAMBDA_OVERHEAD_SECONDS = 0.1  # claim + record around the provider call, per charge
LOG_BYTES_PER_ORDER = {"ecs": 600, "lambda": 900}  # Celery received/succeeded vs START/END/REPORT + JSON


def load_prices(path: Path = PRICES) -> dict:
    return json.loads(path.read_text())


@dataclass(frozen=True)
class Scenario:
    orders: float  # per month
    latency: float = 3.0  # seconds per charge at the provider
    provider_limit: int = 0  # 1 = the seed's one charge at a time; 0 = no limit


def _sqs(requests: float, p: dict) -> float:
    return max(0.0, requests - p["sqs"]["free_requests"]) / MILLION * p["sqs"]["per_million_requests"]


def _logs(orders: float, variant: str, p: dict) -> float:
    gb = orders * LOG_BYTES_PER_ORDER[variant] / 1e9
    return gb * (p["logs"]["ingest_gb"] + p["logs"]["storage_gb_month"])


def task_hour(size: tuple[int, int], p: dict) -> float:
    cpu, mib = size
    return cpu / 1024 * p["fargate"]["vcpu_hour"] + mib / 1024 * p["fargate"]["gb_hour"]


def ecs_consumer(s: Scenario, shop: ShopSettings, p: dict) -> dict[str, float]:
    hours = p["hours_per_month"]
    rate = shop.worker_concurrency * shop.per_worker_rate
    if s.provider_limit:
        rate = min(rate, s.provider_limit / s.latency)
    task_hours = max(shop.min_workers * hours, s.orders / (rate * 3600))
    requests = s.orders / SEND_BATCH + s.orders + s.orders / ACK_BATCH + task_hours * IDLE_POLLS_PER_HOUR
    return {
        "compute": task_hours * task_hour(shop.worker_size, p),
        "sqs": _sqs(requests, p),
        "logs": _logs(s.orders, "ecs", p),
        "task_hours": task_hours,
        "sqs_requests": requests,
    }


def lambda_consumer(s: Scenario, shop: ShopSettings, p: dict) -> dict[str, float]:
    lam = p["lambda"]
    invocations = s.orders / shop.lambda_batch_size
    billed = s.latency * (2 if s.provider_limit == 1 else 1) + LAMBDA_OVERHEAD_SECONDS
    gb_seconds = s.orders * billed * shop.lambda_memory_mb / 1024
    idle_polls = LAMBDA_POLLERS * IDLE_POLLS_PER_HOUR * p["hours_per_month"]
    requests = s.orders / SEND_BATCH + invocations + invocations + idle_polls  # receive, delete per batch
    compute = max(0.0, gb_seconds - lam["free_gb_seconds"]) * lam["gb_second"]
    compute += max(0.0, invocations - lam["free_requests"]) / MILLION * lam["per_million_requests"]
    return {
        "compute": compute,
        "sqs": _sqs(requests, p),
        "logs": _logs(s.orders, "lambda", p),
        "gb_seconds": gb_seconds,
        "sqs_requests": requests,
    }


def total(parts: dict[str, float]) -> float:
    return parts["compute"] + parts["sqs"] + parts["logs"]


def rest_of_shop(s: Scenario, shop: ShopSettings, p: dict, *, alarms: int = 6) -> dict[str, float]:
    """What both variants pay alike: the shop around the consumer (a floor: no data transfer).

    RDS Multi-AZ bills the standby as a second instance (and its storage twice); RDS Proxy bills
    the instance's vCPUs; a NAT gateway per AZ; Redis with one replica; the WAF web ACL with its
    rate rule and three managed rule groups; the ALB's access logs (~300 bytes per request).
    """
    h = p["hours_per_month"]
    lcu_hours = h * max(1.0, s.orders / (h * 3600) / 25)  # 1 LCU ≈ 25 new connections/s; low volume
    azs = 2
    copies = p["rds"]["multi_az_factor"] if shop.db_multi_az else 1
    vcpu = DB_INSTANCES[shop.db_instance][0]
    requests = s.orders * 4  # an order and a few reads
    return {
        "alb": h * p["alb"]["hour"] + lcu_hours * p["alb"]["lcu_hour"],
        "web": shop.web_count * h * task_hour(shop.web_size, p),
        "relay": shop.relay_count * h * task_hour(shop.relay_size, p),
        "sweeper": h * task_hour(shop.sweeper_size, p),
        "rds": copies * (h * p["rds"][f"db.{shop.db_instance}_hour"] + 20 * p["rds"]["gp2_gb_month"]),
        "rds_proxy": h * max(vcpu, p["rds_proxy"]["min_vcpu"]) * p["rds_proxy"]["vcpu_hour"],
        "redis": 2 * h * p["elasticache"][f"{shop.redis_node}_hour"],
        "nat": azs * h * p["nat"]["hour"],
        "waf": p["waf"]["web_acl_month"]
        + 4 * p["waf"]["rule_month"]
        + requests / MILLION * p["waf"]["per_million_requests"],
        "access_logs": requests * 300 / 1e9 * p["s3"]["gb_month"],
        "secrets": 3 * p["secrets"]["per_secret_month"],
        "alarms": (alarms + 2) * p["alarm"]["per_metric_month"],  # two alarms use 3-metric math
    }


def break_even(shop: ShopSettings, p: dict, *, latency: float = 3.0, provider_limit: int = 0) -> float | None:
    """Orders/month above which ECS workers cost less than the Lambda consumer (None: never in range)."""

    def gap(orders: float) -> float:
        s = Scenario(orders, latency, provider_limit)
        return total(lambda_consumer(s, shop, p)) - total(ecs_consumer(s, shop, p))

    low, high = 1.0, 1e10
    if gap(low) > 0 or gap(high) < 0:
        return None
    for _ in range(200):
        mid = (low * high) ** 0.5
        low, high = (mid, high) if gap(mid) < 0 else (low, mid)
    return high


def table(volumes: list[float], shop: ShopSettings, p: dict, *, latency: float, provider_limit: int) -> str:
    lines = [
        f"Prices: {p['region']}, as of {p['as_of']} (deploy/prices.json). "
        f"Worker task {shop.worker_size[0]} CPU / {shop.worker_size[1]} MiB × concurrency "
        f"{shop.worker_concurrency}, {shop.per_worker_rate:.3f} orders/s per thread, "
        f"min {shop.min_workers} task(s); Lambda {shop.lambda_memory_mb} MB, batch "
        f"{shop.lambda_batch_size}; provider {latency:g} s per charge, limit {provider_limit or 'none'}.",
        "",
        "| orders/month | ECS workers | (task-hours) | Lambda | (GB-s) | SQS ECS / Lambda | rest of shop |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    ceiling = provider_limit / latency * 3600 * p["hours_per_month"] if provider_limit else None
    for orders in volumes:
        if ceiling and orders > ceiling:
            lines.append(
                f"| {orders:,.0f} | over the provider's {ceiling:,.0f} charges/month: no consumer helps |||||"
            )
            continue
        s = Scenario(orders, latency, provider_limit)
        ecs, lam = ecs_consumer(s, shop, p), lambda_consumer(s, shop, p)
        rest = sum(rest_of_shop(s, shop, p).values())
        lines.append(
            f"| {orders:,.0f} | ${total(ecs):,.2f} | {ecs['task_hours']:,.0f} | ${total(lam):,.2f} | "
            f"{lam['gb_seconds']:,.0f} | ${ecs['sqs']:,.2f} / ${lam['sqs']:,.2f} | ${rest:,.2f} |"
        )
    even = break_even(shop, p, latency=latency, provider_limit=provider_limit)
    lines += ["", f"Break-even: {even:,.0f} orders/month" if even else "Break-even: none between 1 and 10^10"]
    return "\n".join(lines)


def chart(path: Path, shop: ShopSettings, p: dict, *, latency: float, provider_limit: int) -> Path:
    import matplotlib  # the lab's plotting library, only when a chart is asked for

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    volumes = [10 ** (3 + i / 20) for i in range(101)]  # 1k .. 100M, log-spaced
    rows = [Scenario(v, latency, provider_limit) for v in volumes]
    ecs = [total(ecs_consumer(s, shop, p)) for s in rows]
    lam = [total(lambda_consumer(s, shop, p)) for s in rows]
    rest = [sum(rest_of_shop(s, shop, p).values()) for s in rows]
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.loglog(volumes, ecs, label="ECS workers (consumer only)")
    ax.loglog(volumes, lam, label="Lambda consumer (consumer only)")
    ax.loglog(volumes, rest, ":", color="grey", label="the rest of the shop (both)")
    if even := break_even(shop, p, latency=latency, provider_limit=provider_limit):
        ax.axvline(even, color="black", lw=0.8, ls="--", label=f"break-even {even:,.0f}/month")
    ax.set_xlabel("orders per month")
    ax.set_ylabel(f"USD per month ({p['region']}, prices of {p['as_of']})")
    ax.set_title(f"Charging payment jobs: {latency:g} s provider, limit {provider_limit or 'none'}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
