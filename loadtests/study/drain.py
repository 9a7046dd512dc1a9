"""Phase: the drain study. K orders queued first, then one worker of N threads; how close to N / L
does it pay?

Pure worker efficiency, without a load generator on the same two cores: the orders and their jobs
exist before the worker starts, so the run measures the worker, the SQS server, the database and
the provider sandbox, and CPU is accounted per process so that a limit of the lab is not taken
for one of the shop.

    make experiment ARGS="--phases drain-study"       # N = 1, 5, 20, 100, 200; limit 1 and none; 3 s
    make experiment ARGS="--phases drain-study --drain-workers 100,200 --provider-limits 0 --drain-waves 10"

K = min(N, limit) x waves orders (fewer waves with the provider limited: `--drain-limited-waves`).
N above `--drain-threads` is split over worker processes of equal size. Each run's orders are
written out (orders_<name>.csv) so that the figures can be recomputed from the raw timings.

η = paid per second (first claim to last payment) ÷ the ideal min(N, limit) / latency. Every
order is checked against the sandbox's ledger (charged exactly once) and the worker's log (no
task errors).
"""

from __future__ import annotations

import math
import re
import time
import uuid

import psutil
from django.db import transaction
from django.db.models import Max, Min

from loadtests.bench import POLL_SECONDS, Bench
from loadtests.instruments import EMAIL_DOMAIN, CpuMeter, discard, postgres_pid, startup_cpu, tree_memory
from loadtests.study.context import Lab, order_rows
from orders import checkout
from orders.models import CheckoutMode, Order, OrderEvent, OrderStatus
from sizing.results import DrainRun

# An error or critical line in any of the worker's formats (JSON, console, Celery's own before its
# logging is set up).
TASK_ERROR = re.compile(
    r'"level": "(error|critical)"|\[(error|critical) *\]|\] (ERROR|CRITICAL)'
    r"|raised unexpected|too many (clients|connections)"
)


RELAY_WAIT_SECONDS = 60  # the relay publishes hundreds a second: a backlog of 4,000 takes seconds


def queue_orders(count: int, tag: str) -> list[uuid.UUID]:
    """Accept `count` async orders and wait until the bench's relay has published their jobs, before
    any worker runs.

    Their emails carry `tag` (buyer-<i>@<tag>.loadtest.example), so a run's orders can be found again.
    """
    ids: list[uuid.UUID] = []
    lines = [checkout.Line("travel-mug", 1)]
    for index in range(count):
        with transaction.atomic():
            # enqueued_at stays null until the relay's pass (orders/relay.py) has the job in SQS.
            order = checkout.create_order(
                email=f"buyer-{index}@{tag}.{EMAIL_DOMAIN}", lines=lines, mode=CheckoutMode.ASYNC,
            )  # fmt: skip
        ids.append(order.id)
    deadline = time.monotonic() + RELAY_WAIT_SECONDS
    unpublished = Order.objects.filter(email__endswith=f"@{tag}.{EMAIL_DOMAIN}", enqueued_at__isnull=True)
    while unpublished.exists():
        if time.monotonic() > deadline:
            left = unpublished.count()
            raise RuntimeError(f"the relay left {left} jobs unpublished after {RELAY_WAIT_SECONDS} s")
        time.sleep(0.05)
    return ids


def processes_for(workers: int, most_threads: int) -> int:
    """The fewest worker processes of at most `most_threads` threads each that split N evenly.

    One process runs its threads under one GIL, so its CPU per charge caps what it pays (about 6 ms
    a charge here: some 170 charges/s); production scales ECS tasks of 20 threads. The lab splits N above
    `most_threads` when asked (`--drain-threads`).
    """
    if workers < 1 or most_threads < 1:
        raise ValueError("workers and threads per process must be ≥ 1")
    return next(p for p in range(math.ceil(workers / most_threads), workers + 1) if workers % p == 0)


def drain(
    bench: Bench, *, workers: int, limit: int, latency: float, waves: int, processes: int = 1
) -> DrainRun:
    """Drain min(N, limit) x waves queued orders with N threads, in one worker process or split evenly.

    `processes` > 1 starts that many workers of N / processes threads each: the same N, more GILs.
    """
    if processes < 1 or workers % processes:
        raise ValueError(f"{workers} threads do not split evenly over {processes} worker processes")
    tag = f"drain-w{workers}-l{limit}" + (f"-p{processes}" if processes > 1 else "")
    slots = min(workers, limit) if limit else workers
    count = max(1, slots * waves)
    bench.sandbox.reset(latency_seconds=latency, concurrency=limit)
    ids = queue_orders(count, tag)
    names = [tag] if processes == 1 else [f"{tag}-{index}" for index in range(processes)]
    pool = [bench.stack.start_worker(name, concurrency=workers // processes) for name in names]
    metered = ["worker" if index == 0 else f"worker-{index + 1}" for index in range(processes)]
    pids = {"sqs": _pid(bench, "sqs"), "sandbox": _pid(bench, "sandbox")}
    pids.update(zip(metered, (worker.pid for worker in pool), strict=True))
    if (pg := postgres_pid()) is not None and bench.database.description.startswith("PostgreSQL"):
        pids["postgres"] = pg
    # A worker charges from the moment it is ready, before the lab can see it is: each worker is
    # counted from the CPU it logged itself at ready (its start-up is not the drain's), the rest
    # from the first worker's ready. Counted from when the lab saw a worker ready, a small run's
    # charges could all fall before it (worker CPU 0.0).
    first_ready = startup_cpu(pool[0], timeout=120)
    meter = CpuMeter(pids).start()
    meter.count_from(metered[0], first_ready)
    for name, worker in zip(metered[1:], pool[1:], strict=True):
        meter.count_from(name, startup_cpu(worker, timeout=120))
    bench_began = _own_cpu()
    deadline = time.monotonic() + waves * latency * 3 + 60
    peak_rss = 0.0
    while time.monotonic() < deadline:
        peak_rss = max(peak_rss, sum(tree_memory(worker.pid)["rss_mb"] for worker in pool))
        # By the run's email tag, not `pk__in=ids`: 4,000 ids rebuilt into SQL twice a second cost
        # the bench 40 s of CPU at N = 200, taken from the worker on a 2-core machine.
        still_open = Order.objects.filter(
            email__endswith=f"@{tag}.{EMAIL_DOMAIN}",
            status__in=[OrderStatus.ACCEPTED, OrderStatus.PROCESSING],
        )
        if not still_open.exists():
            break
        time.sleep(0.5)
    # The bench alone, not its children (the stack), which the meter counts by name.
    cpu = {**meter.stop(), "bench": round(_own_cpu() - bench_began, 2)}
    for worker in pool:
        discard(bench.stack, worker)
    time.sleep(POLL_SECONDS + 0.5)  # a killed worker's open long poll would take the next run's first job

    orders = Order.objects.filter(pk__in=ids)
    paid = orders.filter(status=OrderStatus.PAID).count()
    failed = orders.filter(status=OrderStatus.FAILED).count()
    first_claim = OrderEvent.objects.filter(order__in=ids, to_status=OrderStatus.PROCESSING).aggregate(
        t=Min("at")
    )["t"]
    last_paid = orders.aggregate(t=Max("paid_at"))["t"]
    seconds = (last_paid - first_claim).total_seconds() if paid and first_claim else 0.0
    rate = paid / seconds if seconds > 0 else 0.0
    ideal = slots / latency
    per_key = bench.sandbox.charges_per_key()
    keys = [Order.payment_key_for(i) for i in ids]
    log = "".join(worker.log_path.read_text(errors="replace") for worker in pool)
    return DrainRun(
        name=tag,
        workers=workers,
        provider_limit=limit,
        latency=latency,
        orders=count,
        paid=paid,
        failed=failed,
        charged_twice=sum(per_key[k] > 1 for k in keys),
        not_charged=sum(per_key[k] == 0 for k in keys),
        task_errors=len(TASK_ERROR.findall(log)),
        seconds=round(seconds, 2),
        rate=round(rate, 3),
        ideal_rate=round(ideal, 3),
        efficiency=round(rate / ideal, 3) if ideal else 0.0,
        overhead_ms=round((seconds * slots / paid - latency) * 1000, 1) if paid else 0.0,
        provider_peak=bench.sandbox.stats().get("max_in_flight", 0),
        worker_rss_mb=round(peak_rss, 1),
        cpu_seconds=cpu,
        processes=processes,
    )


def run(lab: Lab, *, workers: int, limit: int) -> DrainRun:
    c = lab.config
    # The drain study resets the sandbox's knobs and ledger itself (its limit, its latency).
    result = drain(
        lab.bench, workers=workers, limit=limit, latency=c.latency,
        waves=c.drain_limited_waves if limit else c.drain_waves,
        processes=processes_for(workers, c.drain_threads),
    )  # fmt: skip
    lab.write_csv(f"orders_{result.name}.csv", order_rows(result.name))
    if result.paid + result.failed < result.orders:  # stopped at its deadline: jobs may be left in SQS
        lab.empty_queue()
    return result


def _own_cpu() -> float:
    times = psutil.Process().cpu_times()
    return times.user + times.system


def _pid(bench: Bench, name: str) -> int:
    return next(p.pid for p in bench.stack.processes if p.name == name)
