"""The orchestrator: run the phases in order on one bench, save results.json after each, write the report.

Imported after `django.setup()` (loadtests.experiment), like every phase: they read orders with the ORM.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import boto3
import psutil

from devstack.stack import BASE_DIR, SQS_SERVER
from loadtests import report, wrk
from loadtests.bench import Bench
from loadtests.instruments import Queue
from loadtests.study import accept, capacity, ceilings, drain, eta, memory, saturation, scaling, sync
from loadtests.study.config import StudyConfig
from loadtests.study.context import Lab, Progress
from shop.models import Product
from sizing.results import Environment, Parameters, PhaseTiming, StudyResults


def run(
    config: StudyConfig, bench: Bench, report_dir: Path, *, command: str, stack_seconds: float
) -> StudyResults:
    estimate = {name: seconds for name, seconds in config.estimate().items() if seconds or name == "report"}
    if config.saturation_seconds:
        wrk.ensure_installed(lambda text: print(text, file=sys.stderr, flush=True))  # before the phases
    progress = Progress(total=len(estimate) - 1)
    sqs = boto3.client("sqs", endpoint_url=bench.stack.env["SQS_ENDPOINT_URL"], region_name="us-east-1")
    queue_url = sqs.get_queue_url(QueueName=bench.stack.env.get("SQS_QUEUE_NAME", "flashsale-payments"))
    web = bench.stack.start_web()
    queue = Queue(bench.stack.env["SQS_ENDPOINT_URL"], queue_url["QueueUrl"])
    # Unlimited products only: a sold-out flash product would turn the load into 409s.
    skus = list(Product.objects.filter(active=True, stock=None).values_list("sku", flat=True))
    lab = Lab(bench, config, report_dir, queue, progress, web, skus)
    lab.data.mkdir(parents=True, exist_ok=True)
    results = StudyResults(parameters=_parameters(config, command), environment=_environment(bench))
    results.phases.append(PhaseTiming("stack", estimate["stack"], round(stack_seconds, 1)))
    began = time.monotonic() - stack_seconds

    def phase(name: str, work: Callable[[], None]) -> None:
        if not config.runs(name):
            return  # not asked for (--phases)
        progress.phase(f"{name} (estimate {estimate[name]:.0f} s)")
        started = time.monotonic()
        work()
        results.phases.append(
            PhaseTiming(name, round(estimate[name], 1), round(time.monotonic() - started, 1))
        )
        save(results, report_dir)

    c = config
    phase("sqs ceilings", lambda: results.sqs_ceilings.extend(ceilings.run(lab)))
    if c.eta_workers:  # first of the phases placing orders: the ETA reads the whole database's line
        phase("eta accuracy", lambda: setattr(results, "eta", eta.run(lab)))
    phase("sync checkout", lambda: setattr(results, "sync", sync.run(lab)))
    phase("sync with the checkout queue", lambda: setattr(results, "sync_queue", sync.run_queued(lab)))
    phase("async accept", lambda: results.accept.extend(accept.run(lab)))
    phase(
        "sold out",
        lambda: results.accept.append(
            accept.sold_out(lab, hot=next((a for a in results.accept if a.product == "hot"), None))
        ),
    )

    def every_run(study, runs: list, workers: list[int]) -> Callable[[], None]:
        """One run of `study` per provider limit and worker count, saved as each one ends."""

        def run_all() -> None:
            for limit in c.provider_limits:
                for n in workers:
                    progress.status(f"N={n}, provider limit {limit or 'none'}", force=True)
                    runs.append(study.run(lab, workers=n, limit=limit))
                    save(results, report_dir)

        return run_all

    phase("drain study", every_run(drain, results.drain, c.drain_workers))
    phase("flash-sale scaling", every_run(scaling, results.scaling, c.workers))
    phase("capacity", lambda: setattr(results, "capacity", capacity.run(lab)))
    if c.saturation_seconds:
        phase("saturation", lambda: results.saturation.extend(saturation.run(lab)))
    if c.prefork:
        phase(
            "memory", lambda: results.memory.extend(memory.run(lab, pool=p) for p in ("threads", "prefork"))
        )

    progress.phase("report")
    started = time.monotonic()
    results.environment = _finished(results.environment, time.monotonic() - began)
    report.write(report_dir, results)
    results.phases.append(PhaseTiming("report", estimate["report"], round(time.monotonic() - started, 1)))
    results.environment = _finished(results.environment, time.monotonic() - began)
    save(results, report_dir)
    report.write(report_dir, results)  # again, with the report phase's own time
    progress.done()
    return results


def save(results: StudyResults, report_dir: Path) -> None:
    """data/results.json, and the root copy `manage.py recommend_workers --report <dir>` reads."""
    results.dump(report_dir / "data" / "results.json")
    results.dump(report_dir / "results.json")


def _parameters(c: StudyConfig, command: str) -> Parameters:
    return Parameters(
        quick=c.quick, command=command, users=c.users, user_rate=c.user_rate, duration=c.duration,
        latency=c.latency, workers=list(c.workers), provider_limits=list(c.provider_limits),
        drain_cap=c.drain_cap, drain_workers=list(c.drain_workers), drain_waves=c.drain_waves,
        drain_threads=c.drain_threads, drain_limited_waves=c.drain_limited_waves,
        accept_seconds=c.accept_seconds,
        ceiling_depths=list(c.ceiling_depths), ceiling_seconds=c.ceiling_seconds,
        ceiling_threads=c.ceiling_threads, capacity_rates=list(c.capacity_rates),
        capacity_seconds=c.capacity_seconds, prefork=c.prefork,
        saturation_seconds=c.saturation_seconds, saturation_connections=c.saturation_connections,
        saturation_threads=c.saturation_threads, saturation_rounds=c.saturation_rounds,
        estimated_seconds=round(sum(c.estimate().values())),
        eta_workers=c.eta_workers, eta_duration=c.eta_duration, eta_samples=c.eta_samples,
        eta_reread=c.eta_reread,
    )  # fmt: skip


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _node_package(name: str) -> str:
    path = SQS_SERVER.parent / "node_modules" / name / "package.json"
    return json.loads(path.read_text())["version"] if path.exists() else "not installed"


def _environment(bench: Bench) -> Environment:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=BASE_DIR, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    models = (
        [
            line.split(":", 1)[1].strip()
            for line in cpuinfo.read_text().splitlines()
            if line.startswith("model name")
        ]
        if cpuinfo.exists()
        else []
    )
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    packages = ("Django", "celery", "kombu", "boto3", "psycopg", "locust", "gunicorn", "aiohttp")
    return Environment(
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        cpu_count=os.cpu_count() or 1,
        cpu_model=models[0] if models else "",
        memory_gb=round(psutil.virtual_memory().total / 2**30, 1),
        load_average_at_start=[round(x, 2) for x in os.getloadavg()],
        platform=platform.platform(),
        python=platform.python_version(),
        versions={**{p: _version(p) for p in packages}, "fauxqs": _node_package("fauxqs"), "node": node},
        database=bench.database.description,
        git_commit=commit,
        web="gunicorn gthread, 2 processes × 32 threads",
        worker_pool="threads (celery --pool=threads), one worker process per run",
    )


def _finished(env: Environment, wall: float) -> Environment:
    return Environment(
        **{**env.__dict__, "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
           "wall_seconds": round(wall), "load_average_at_end": [round(x, 2) for x in os.getloadavg()]}
    )  # fmt: skip
