"""The study's phases, run in order on one stack; each phase records raw data and derived figures.

Imported after `django.setup()` (see `loadtests.experiment`): it reads orders with the ORM.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import psutil
from django.db import connection
from django.db.models import Count, Min, Q

from capacity import results as results_schema
from capacity.sizing import ideal_rate
from config.timeouts import Timeouts
from devstack.stack import BASE_DIR, Stack
from loadtests import measure, report
from loadtests.bench import UNLIMITED_RATES
from loadtests.lab import (
    EMAIL_DOMAIN,
    CpuMeter,
    LocustRun,
    Queue,
    Sampler,
    Sandbox,
    discard,
    post_orders,
    send_ceiling,
    tree_memory,
    wait_for_log,
)
from orders.models import Order
from shop.models import Product

FINAL = ("paid", "failed")
CAPACITY_P99_MS = 100.0


class Progress:
    """One live status line (rewritten in place on a terminal, printed every few seconds otherwise)."""

    def __init__(self, total: int):
        self.total = total
        self.index = 0
        self.began = time.monotonic()
        self.tty = sys.stderr.isatty()
        self.last_print = 0.0
        self.phase_name = ""

    def phase(self, name: str) -> None:
        self.index += 1
        self.phase_name = name
        self.status("starting", force=True)

    def status(self, text: str, *, force: bool = False) -> None:
        elapsed = time.monotonic() - self.began
        line = (
            f"[{self.index}/{self.total} {elapsed // 60:.0f}m{elapsed % 60:02.0f}s] {self.phase_name}: {text}"
        )
        if self.tty:
            sys.stderr.write("\r" + line[:150].ljust(150))
            sys.stderr.flush()
        elif force or time.monotonic() - self.last_print >= 10:
            sys.stderr.write(line + "\n")
            self.last_print = time.monotonic()

    def done(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


def order_counts(tag: str) -> dict[str, int]:
    rows = dict(_orders(tag).values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    counts = {f"db_{status}": rows.get(status, 0) for status in ("accepted", "processing", "paid", "failed")}
    counts["db_orders"] = sum(rows.values())
    return counts


def order_rows(tag: str) -> list[dict]:
    """Every order of a run with its timings (epoch seconds): created, claimed, paid, last change."""
    rows = (
        _orders(tag)
        .annotate(claimed_at=Min("events__at", filter=Q(events__to_status="processing")))
        .values("id", "status", "created_at", "claimed_at", "paid_at", "updated_at")
    )

    def epoch(value):
        return value.timestamp() if value is not None else None

    return [
        {
            "id": str(r["id"]),
            "status": r["status"],
            "created_at": epoch(r["created_at"]),
            "claimed_at": epoch(r["claimed_at"]),
            "paid_at": epoch(r["paid_at"]),
            "final_at": epoch(r["paid_at"] or (r["updated_at"] if r["status"] == "failed" else None)),
        }
        for r in rows
    ]


def _orders(tag: str):
    return Order.objects.filter(email__endswith=f"@{tag}.{EMAIL_DOMAIN}")


class Study:
    def __init__(self, args, report_dir: Path, database_url: str):
        self.args = args
        self.dir = report_dir
        self.data = report_dir / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.database_url = database_url
        self.began = time.monotonic()
        scaling_runs = len(args.workers) * len(args.provider_limits)
        self.progress = Progress(total=5 + scaling_runs + (1 if args.prefork else 0) + 1)
        # A worker's charge may wait behind every other worker's at a limit-1 provider.
        payment_timeout = math.ceil(max(args.workers) * args.latency * 1.2 + 30)
        self.env = {
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "DATABASE_URL": database_url,
            **Timeouts.derive(payment=payment_timeout).as_env(),  # the rest of the chain follows
            # Short long-polls: a killed worker's last poll must not swallow the next run's first job.
            "SQS_WAIT_TIME_SECONDS": "1",
            **UNLIMITED_RATES,  # one loopback client (loadtests/bench.py)
        }
        self.stack = Stack.create(report_dir / "logs", extra_env=self.env)
        self.results: dict = {
            "schema": results_schema.SCHEMA_VERSION,  # capacity/results.py documents what it reads
            "parameters": self._parameters(),
            "scaling": [],
            "capacity": {},
            "memory": [],
        }
        self.host = ""

    # --- set-up ---------------------------------------------------------------------------------

    def run(self) -> None:
        self.setup()
        self.measure_send_ceiling()
        self.run_sync()
        for limit in self.args.provider_limits:
            for workers in self.args.workers:
                self.results["scaling"].append(self.run_async(workers=workers, limit=limit))
                self.save()
        self.results["sync_vs_async"]["async"] = self._async_beside_sync()
        self.run_capacity()
        if self.args.prefork:
            self.run_memory()
        self.progress.phase("report")
        self.results["environment"]["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        self.results["environment"]["wall_seconds"] = round(time.monotonic() - self.began)
        self.results["environment"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        self.save()
        report.write(self.dir, self.results)
        self.progress.status("written", force=True)
        self.progress.done()

    def close(self) -> None:
        self.stack.stop()
        connection.close()

    def setup(self) -> None:
        self.progress.phase("stack")
        self.results["environment"] = self._environment()
        self.progress.status("migrating the database")
        self.stack.manage("migrate", "--noinput")
        self.stack.manage("seed_catalogue")
        self.progress.status("starting SQS emulator, payment sandbox, web")
        self.stack.start_sqs()
        self.provider = self.stack.start_sandbox(
            PAYMENT_LATENCY_SECONDS=str(self.args.latency), PAYMENT_PROVIDER_CONCURRENCY="1"
        )
        queues = self.stack.manage("create_queues")
        queue_url = queues.split("queue:")[1].split()[0]
        self.queue = Queue(self.stack.env["SQS_ENDPOINT_URL"], queue_url)
        self.sandbox = Sandbox(self.stack.env["PAYMENT_PROVIDER_URL"])
        self.web = self.stack.start_web()
        self.host = self.stack.env["WEB_URL"]
        # Unlimited products only: a sold-out flash product would turn the load into 409s.
        self.skus = list(Product.objects.filter(active=True, stock=None).values_list("sku", flat=True))

    def empty_queue(self) -> None:
        """Start the next run on an empty queue by restarting the SQS emulator.

        PurgeQueue keeps messages that are in flight, and a killed worker leaves up to its
        concurrency of them: they come back mid-way through the next run and spend its provider
        slots on the previous run's orders. A restarted emulator has none, and a restarted web
        has no jobs of the previous run still waiting to be published.
        """
        port = int(self.stack.env["SQS_ENDPOINT_URL"].rsplit(":", 1)[1])
        # The web publishes jobs after its responses (orders/outbox.py): a new web process holds
        # none of the previous run's, which would otherwise land in the next run's queue.
        discard(self.stack, self.web)
        self.stack.stop_named("sqs")
        self.stack.start_sqs(port)
        self.stack.manage("create_queues")
        self.web = self.stack.start_web()
        self.host = self.stack.env["WEB_URL"]

    def _pid(self, name: str) -> int:
        return next(p.pid for p in self.stack.processes if p.name == name)

    def fresh_provider(self, *, latency: float, limit: int) -> None:
        """Restart the sandbox (same port) with these knobs and an empty ledger.

        A restart rather than `POST /v1/reset`: charges abandoned by the previous run's killed
        worker would otherwise finish later and release slots of the new limiter.
        """
        port = int(self.stack.env["PAYMENT_PROVIDER_URL"].rsplit(":", 1)[1])
        discard(self.stack, self.provider)
        self.provider = self.stack.start_sandbox(
            port, PAYMENT_LATENCY_SECONDS=str(latency), PAYMENT_PROVIDER_CONCURRENCY=str(limit)
        )

    def _parameters(self) -> dict:
        a = self.args
        return {
            "quick": a.quick,
            "users": a.users,
            "duration": a.duration,
            "user_rate": a.user_rate,
            "latency": a.latency,
            "workers": a.workers,
            "provider_limits": a.provider_limits,
            "drain_cap": a.drain_cap,
            "async_workers": a.async_workers,
            "capacity_rates": a.capacity_rates,
            "capacity_seconds": a.capacity_seconds,
            "ceiling_seconds": a.ceiling_seconds,
            "ceiling_threads": a.ceiling_threads,
            "prefork": a.prefork,
            "command": " ".join(["python -m loadtests.experiment", *sys.argv[1:]]),
        }

    def _environment(self) -> dict:
        def ver(name: str) -> str:
            try:
                return version(name)
            except PackageNotFoundError:
                return "-"

        try:
            commit = subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                cwd=BASE_DIR,
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
        except OSError:
            commit = ""
        cpu_model = ""
        cpuinfo = Path("/proc/cpuinfo")
        if cpuinfo.exists():
            cpu_model = next(
                (
                    line.split(":", 1)[1].strip()
                    for line in cpuinfo.read_text().splitlines()
                    if line.startswith("model name")
                ),
                "",
            )
        engine = connection.vendor
        return {
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "cpu_count": os.cpu_count(),
            "cpu_model": cpu_model,
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "platform": platform.platform(),
            "python": platform.python_version(),
            "versions": {
                name: ver(name)
                for name in (
                    "Django",
                    "celery",
                    "kombu",
                    "boto3",
                    "moto",
                    "locust",
                    "gunicorn",
                    "aiohttp",
                    "matplotlib",
                )
            },
            "database": f"{engine} {sqlite3.sqlite_version if engine == 'sqlite' else ''}".strip(),
            "git_commit": commit,
            "web": "gunicorn gthread, 2 processes × 32 threads",
            "worker_pool": "threads (celery --pool=threads), one worker process per run",
        }

    def save(self) -> None:
        (self.data / "results.json").write_text(json.dumps(self.results, indent=2, default=str))
        # The root copy is what `manage.py recommend_workers --report <dir>` reads.
        (self.dir / "results.json").write_text(json.dumps(self.results, indent=2, default=str))

    # --- phases -----------------------------------------------------------------------------------

    def measure_send_ceiling(self) -> None:
        self.progress.phase("SQS emulator send ceiling")
        self.progress.status(
            f"{self.args.ceiling_threads} boto3 threads sending for {self.args.ceiling_seconds:g} s"
        )
        result = send_ceiling(
            self.stack.env["SQS_ENDPOINT_URL"],
            seconds=self.args.ceiling_seconds,
            threads=self.args.ceiling_threads,
        )
        self.results["sqs_send_ceiling"] = result
        self.progress.status(f"{result['rate']:.0f} SendMessage/s", force=True)

    def run_sync(self) -> None:
        """The pre-queue shop: sync checkout, provider limit 1, no workers."""
        a = self.args
        self.progress.phase("sync checkout")
        self.fresh_provider(latency=a.latency, limit=1)
        run = self._load("sync", "SyncCheckoutUser", users=a.users, seconds=a.duration, worker_pid=None)
        stats = self.sandbox.stats()
        # Requests Locust gave up on still hold gunicorn threads and provider slots: the web restart in
        # empty_queue keeps them from the next run (a late 504 would enqueue its order for its workers).
        self.empty_queue()
        counts = order_counts("sync")
        self.results["sync_vs_async"] = {
            "sync": {
                **run["locust"],
                **counts,
                "provider": _provider_summary(stats),
                "provider_limit": 1,
                "latency": a.latency,
                "users": a.users,
                "duration": a.duration,
                "throughput": (run["locust"]["requests"] - run["locust"]["failures"]) / a.duration,
            },
        }
        self._write_csv("samples_sync.csv", run["samples"])
        self._write_csv("orders_sync.csv", order_rows("sync"))
        self.save()

    def run_async(self, *, workers: int, limit: int) -> dict:
        """One worker-scaling run: the async load, then watch the queue drain (within the cap)."""
        a = self.args
        name = f"w{workers}-l{limit}"
        self.progress.phase(f"async, {workers} worker(s), provider limit {limit or 'none'}")
        self.fresh_provider(latency=a.latency, limit=limit)
        worker = self.stack.start_worker(f"worker-{name}", concurrency=workers, pool="threads")
        ready_seconds = wait_for_log(worker, " ready.", timeout=120)
        idle_memory = tree_memory(worker.pid)
        meter = CpuMeter(
            {"sqs": self._pid("sqs"), "web": self.web.pid, "worker": worker.pid, "sandbox": self.provider.pid}
        ).start()
        run = self._load(
            name,
            "AsyncCheckoutUser",
            users=a.users,
            seconds=a.duration,
            worker_pid=worker.pid,
            drain_cap=a.drain_cap,
        )
        cpu = meter.stop()
        discard(self.stack, worker)
        stats = self.sandbox.stats()
        time.sleep(1.5)  # the killed worker's last long-poll runs out before the queue is emptied
        self.empty_queue()

        rows, samples = run["rows"], run["samples"]
        created = [r["created_at"] for r in rows]
        load_start, load_end = (min(created), max(created)) if created else (run["started"], run["started"])
        claims = [r["claimed_at"] for r in rows if r["claimed_at"] is not None]
        paid = [r for r in rows if r["status"] == "paid"]
        counts = run["counts"]
        end = run["drained_at"] if run["drained_at"] is not None else run["stopped_at"]
        rate = measure.processing_rate(paid=len(paid), first_claim=min(claims, default=None), end=end)
        ideal = ideal_rate(workers, latency=a.latency, provider_limit=limit)
        backlog = sum(1 for r in rows if r["final_at"] is None or r["final_at"] > load_end)
        drain = measure.drain_time(
            load_end=load_end,
            drained_at=run["drained_at"],
            stopped_at=run["stopped_at"],
            remaining=counts["db_accepted"] + counts["db_processing"],
            rate=rate,
        )
        to_paid = [r["paid_at"] - r["created_at"] for r in paid]
        memory_peak = max((s.get("worker_rss_mb", 0) for s in samples), default=0)
        self._write_csv(f"samples_{name}.csv", [{**s, "t": round(s["at"] - load_start, 2)} for s in samples])
        self._write_csv(f"orders_{name}.csv", rows)
        return {
            "name": name,
            "workers": workers,
            "provider_limit": limit,
            "latency": a.latency,
            "locust": run["locust"],
            **counts,
            "accepted_202": run["locust"]["requests"] - run["locust"]["failures"],
            "in_flight": counts["db_accepted"] + counts["db_processing"],
            "load_seconds": round(load_end - load_start, 2),
            "incoming_rate": len(rows) / (load_end - load_start) if load_end > load_start else 0.0,
            "peak_depth": max((s["total"] for s in samples), default=0),
            "peak_visible": max((s["visible"] for s in samples), default=0),
            "backlog_at_load_end": backlog,
            "measured_rate": rate,
            "ideal_rate": ideal,
            "efficiency": measure.efficiency(rate, ideal),
            "drain": drain.as_dict(),
            "drain_label": drain.label,
            "predicted_drain_seconds": backlog / rate if rate else None,
            "time_to_paid_p50": measure.percentile(to_paid, 50),
            "time_to_paid_p95": measure.percentile(to_paid, 95),
            "provider": _provider_summary(stats),
            "cpu_seconds": cpu,
            "worker_ready_seconds": round(ready_seconds, 1),
            "worker_idle_rss_mb": idle_memory["rss_mb"],
            "worker_peak_rss_mb": memory_peak,
            "load_start": load_start,
            "load_end": load_end,
            "stopped_at": run["stopped_at"],
            "drained_at": run["drained_at"],
        }

    def _load(
        self,
        tag: str,
        user_class: str,
        *,
        users: int,
        seconds: float,
        worker_pid: int | None,
        drain_cap: float = 0.0,
        user_rate: float | None = None,
    ) -> dict:
        """Run Locust with the sampler on, then watch until the run's orders are final or the cap passes."""
        sampler = Sampler(self.queue, lambda: order_counts(tag), worker_pid=worker_pid)
        locust = LocustRun(
            self.data / f"locust_{tag}",
            self.host,
            user_class,
            users,
            seconds,
            tag,
            user_rate or self.args.user_rate,
        )

        def show(sample: dict) -> None:
            phase = (
                f"load {time.time() - locust.started_at:.0f}/{seconds:g} s"
                if locust.running()
                else "draining"
            )
            self.progress.status(
                f"{phase} | queue {sample['total']} (visible {sample['visible']}) "
                f"| orders {sample['db_orders']} "
                f"paid {sample['db_paid']} failed {sample['db_failed']}"
            )

        sampler.on_sample = show
        sampler.start()
        locust.start()
        summary = locust.wait()
        load_end = time.time()
        drained_at = None
        for _ in range(int(drain_cap) + 1 if drain_cap else 0):
            counts = order_counts(tag)
            if counts["db_accepted"] + counts["db_processing"] == 0 and self.queue.depth()["total"] == 0:
                rows = order_rows(tag)
                drained_at = max((r["final_at"] for r in rows), default=load_end)
                break
            if time.time() - load_end >= drain_cap:
                break
            time.sleep(min(1.0, max(0.0, load_end + drain_cap - time.time())))
        stopped_at = time.time()
        samples = sampler.stop()
        return {
            "locust": summary,
            "samples": samples,
            "rows": order_rows(tag),
            "counts": order_counts(tag),
            "started": locust.started_at,
            "drained_at": drained_at,
            "stopped_at": stopped_at,
        }

    def _async_beside_sync(self) -> dict:
        """The async column: the scaling run at the sync run's provider limit (1) with --async-workers."""
        runs = [r for r in self.results["scaling"] if r["provider_limit"] == 1] or self.results["scaling"]
        run = min(runs, key=lambda r: abs(r["workers"] - self.args.async_workers))
        return {
            **run["locust"],
            "from_run": run["name"],
            "workers": run["workers"],
            "provider_limit": run["provider_limit"],
            "db_orders": run["db_orders"],
            "throughput": run["accepted_202"] / self.args.duration,
        }

    def run_capacity(self) -> None:
        """Step the async accept rate up (no workers) until p99 reaches 100 ms or the rate is not reached."""
        a = self.args
        self.progress.phase("capacity (async accept rate, no workers)")
        steps = []
        for target in a.capacity_rates:
            users = max(10, math.ceil(target / 4))
            tag = f"cap-{target:g}".replace(".", "-")
            self.progress.status(f"target {target:g} orders/s with {users} users")
            run = self._load(
                tag,
                "AsyncCheckoutUser",
                users=users,
                seconds=a.capacity_seconds,
                worker_pid=None,
                user_rate=target / users,
            )
            self.empty_queue()
            created = [r["created_at"] for r in run["rows"]]
            span = max(created) - min(created) if len(created) > 1 else 0
            step = {
                "target": target,
                "users": users,
                **{
                    k: run["locust"][k]
                    for k in ("requests", "failures", "median_ms", "p95_ms", "p99_ms", "rps")
                },
                "accepted": len(created),
                "accept_rate": (len(created) - 1) / span if span else 0.0,
            }
            step["ok"] = step["p99_ms"] < CAPACITY_P99_MS and step["failures"] == 0
            steps.append(step)
            self._write_csv(f"samples_{tag}.csv", run["samples"])
            # One noisy step does not end the search; two failing in a row, or a rate not reached, do.
            if step["accept_rate"] < 0.85 * target or (
                len(steps) > 1 and not steps[-2]["ok"] and not step["ok"]
            ):
                break
        passing = [s for s in steps if s["ok"]]
        self.results["capacity"] = {
            "p99_limit_ms": CAPACITY_P99_MS,
            "steps": steps,
            "best": max(passing, key=lambda s: s["accept_rate"]) if passing else None,
        }
        self._write_csv("capacity.csv", steps)
        self.save()

    def run_memory(self) -> None:
        """Prefork vs threads at the same pool size, under the same burst of orders (no provider limit)."""
        a = self.args
        self.progress.phase(f"worker memory, prefork vs threads at {a.prefork}")
        for pool in ("threads", "prefork"):
            tag = f"mem-{pool}-{a.prefork}"
            self.fresh_provider(latency=a.latency, limit=0)
            worker = self.stack.start_worker(f"worker-{tag}", concurrency=a.prefork, pool=pool)
            wait_for_log(worker, " ready.", timeout=120)
            time.sleep(1)  # prefork children finish importing after "ready"
            idle = tree_memory(worker.pid)
            count = 3 * a.prefork
            self.progress.status(f"{pool}: {count} orders")
            accepted = post_orders(self.host, tag, count, skus=self.skus)
            peak = dict(idle)
            deadline = time.monotonic() + 3 * a.latency * math.ceil(count / a.prefork) + 30
            while time.monotonic() < deadline:
                now = tree_memory(worker.pid)
                peak = {k: max(peak[k], now[k]) for k in peak}
                counts = order_counts(tag)
                if counts["db_paid"] + counts["db_failed"] >= accepted:
                    break
                time.sleep(0.3)
            discard(self.stack, worker)
            time.sleep(1.5)
            self.empty_queue()
            self.results["memory"].append(
                {
                    "pool": pool,
                    "concurrency": a.prefork,
                    "orders": accepted,
                    "paid": order_counts(tag)["db_paid"],
                    "idle_rss_mb": idle["rss_mb"],
                    "peak_rss_mb": peak["rss_mb"],
                    "peak_pss_mb": peak["pss_mb"],
                    "processes": peak["processes"],
                }
            )
        self._write_csv("memory.csv", self.results["memory"])
        self.save()

    def _write_csv(self, name: str, rows: list[dict]) -> None:
        if not rows:
            return
        fields = list(dict.fromkeys(k for row in rows for k in row))
        with (self.data / name).open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)


def _provider_summary(stats: dict) -> dict:
    keys = (
        "requests",
        "charges",
        "declines",
        "errors",
        "replays",
        "max_in_flight",
        "max_waiting",
        "keys_charged_more_than_once",
    )
    return {k: stats.get(k) for k in keys}
