"""The lab's instruments: the CPU meter, Locust runs, and the samplers that watch the stack.

Everything here talks to 127.0.0.1 only: the processes come from `devstack.stack.Stack`.
"""

from __future__ import annotations

import csv
import ctypes
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import httpx
import psutil
from django.db import connection

from devstack.stack import BASE_DIR, Process, Stack
from loadtests.products import EMAIL_DOMAIN
from queues.setup import read_depth
from sizing.results import LocustStats

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
_libc = ctypes.CDLL(None, use_errno=True)


def wait_for_log(process: Process, marker: str, *, timeout: float) -> float:
    """Wait until `marker` appears in the process's log; return the seconds it took."""
    started = time.monotonic()
    for _ in range(int(timeout / 0.1) + 1):
        if marker in process.log_path.read_text(errors="replace"):
            return time.monotonic() - started
        if not process.alive():
            raise RuntimeError(f"{process.name} exited; see {process.log_path}")
        time.sleep(0.1)
    raise TimeoutError(f"{process.name} did not log {marker!r} within {timeout:g}s; see {process.log_path}")


def startup_cpu(worker: Process, *, timeout: float) -> float:
    """The CPU seconds a Celery worker had used when its consumer loop began (config/celery_app.py)."""
    wait_for_log(worker, '"startup_cpu_seconds"', timeout=timeout)
    lines = worker.log_path.read_text(errors="replace").splitlines()
    return next(json.loads(line)["startup_cpu_seconds"] for line in lines if '"startup_cpu_seconds"' in line)


def discard(stack: Stack, process: Process) -> None:
    """Kill a process at once (no warm shutdown: its unfinished charges are abandoned) and forget it."""
    process.kill(signal.SIGKILL)
    if process.popen is not None:
        process.popen.wait(10)
    if process in stack.processes:
        stack.processes.remove(process)


class CpuMeter:
    """CPU seconds used by named process trees, and by the whole machine, between start() and stop().

    On a shared machine this says where the CPU went: the shop's own processes or something else.
    Each process counts once, in the nearest named tree: a tree stops at another named root (the
    lab's own process is the parent of the whole stack, and must not count the stack twice). A
    process that ended (a PostgreSQL backend, a prefork child) stays counted through its parent's
    children_* times, except under the lab's own process, whose reaped children are Locust (metered
    on its own when it exits) and the set-up's `manage.py` commands.
    """

    def __init__(self, pids: dict[str, int]):
        self.pids = pids
        self.began: dict[str, float] = {}

    def _tree_seconds(self, pid: int) -> float:
        roots = set(self.pids.values()) - {pid}
        total, todo = 0.0, [pid]
        while todo:
            try:
                proc = psutil.Process(todo.pop())
                times = proc.cpu_times()
                children = [child.pid for child in proc.children() if child.pid not in roots]
            except psutil.NoSuchProcess:
                continue
            todo.extend(children)
            total += _own_cpu_seconds(proc.pid, times)
            if proc.pid != os.getpid():
                total += times.children_user + times.children_system
        return total

    @staticmethod
    def _machine() -> tuple[float, float, float]:
        """Busy CPU seconds of every core (steal included), of which stolen, and the clock.

        Steal is time a virtual core was ready to run but its hypervisor ran another guest: the
        machine's processes were slowed by it and no process of this machine's used it."""
        times = psutil.cpu_times()
        idle = times.idle + getattr(times, "iowait", 0.0)
        return sum(times) - idle, getattr(times, "steal", 0.0), time.monotonic()

    def snapshot(self) -> dict[str, float]:
        busy, stolen, now = self._machine()
        return {
            "machine": busy,
            "steal": stolen,
            "wall": now,
            **{name: self._tree_seconds(pid) for name, pid in self.pids.items()},
        }

    def start(self) -> CpuMeter:
        self.began = self.snapshot()
        return self

    def count_from(self, name: str, cpu_seconds: float) -> None:
        """Count `name` from the moment its process had used `cpu_seconds`, as it read them itself.

        For a process that finished starting after start() and may have worked before the lab saw
        it ready (a worker: `startup_cpu`). The process's own CPU only: one without children.
        """
        self.began[name] = cpu_seconds

    def stop(self) -> dict[str, float]:
        """Return CPU seconds per process tree, 'machine' (all busy CPU), 'steal' (the part of it
        the hypervisor gave other guests) and 'wall' seconds."""
        end = self.snapshot()
        return {name: round(end[name] - self.began[name], 3) for name in end}


def _own_cpu_seconds(pid: int, times) -> float:
    """The CPU a live process used itself (all its threads, ended ones too), to the nanosecond.

    /proc/<pid>/stat, which psutil reads, counts in clock ticks of 10 ms: a worker process that
    charged two orders in a short run reads 0.0 there. The kernel's per-process CPU clock
    (clock_getcpuclockid(3), which Python's time module does not wrap) is exact; the ticks remain
    the fallback for a process whose clock can no longer be read (a zombie).
    """
    clock = ctypes.c_int()  # clockid_t
    if _libc.clock_getcpuclockid(pid, ctypes.byref(clock)) == 0:
        try:
            return time.clock_gettime(clock.value)
        except OSError:
            pass
    return times.user + times.system


def tree_memory(pid: int) -> dict[str, float]:
    """Resident and proportional memory (MB) of a process and its children (prefork pools have many)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return {"rss_mb": 0.0, "pss_mb": 0.0, "processes": 0}
    rss = pss = 0
    for proc in procs:
        try:
            info = proc.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
    return {"rss_mb": rss / 2**20, "pss_mb": pss / 2**20, "processes": len(procs)}


class Queue:
    """The payment queue in the SQS emulator, read with boto3 like CloudWatch would."""

    def __init__(self, endpoint: str, url: str):
        self.endpoint = endpoint
        self.url = url
        self.client = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")

    def depth(self) -> dict[str, int]:
        depth = read_depth(self.client, self.url)
        return {
            "visible": depth.visible,
            "not_visible": depth.in_flight,
            "delayed": depth.delayed,
            "total": depth.total,
        }


def wait_reaping(
    popen: subprocess.Popen, deadline: float, on_tick: Callable[[], None] | None = None
) -> float:
    """Wait for a load generator to exit (killed past `deadline`, a monotonic time), calling
    `on_tick` about once a second; return the CPU seconds it used (from its own rusage)."""
    for tick in itertools.count():
        if on_tick is not None and tick % 10 == 0:
            on_tick()
        pid, status, usage = os.wait4(popen.pid, os.WNOHANG)
        if pid:
            popen.returncode = os.waitstatus_to_exitcode(status)
            return usage.ru_utime + usage.ru_stime
        if time.monotonic() > deadline:
            popen.kill()
        time.sleep(0.1)
    raise AssertionError("unreachable")


@dataclass
class LocustRun:
    """One headless Locust run as a subprocess; its CSVs land at `prefix`_*.csv.

    `cpu_seconds` is the CPU Locust used, read from the kernel when it exits (wait4), so that a
    run can say how much of the machine the load generator itself took.
    """

    prefix: Path
    host: str
    user_classes: list[str]
    users: int
    seconds: float
    tag: str
    user_rate: float
    extra: tuple[str, ...] = ()  # the locustfile's own options, e.g. ("--product", "hot")
    popen: subprocess.Popen | None = None
    started_at: float = 0.0
    ended_at: float = 0.0
    cpu_seconds: float = 0.0

    def start(self) -> LocustRun:
        argv = [
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", self.host,
            "-u", str(self.users), "-r", str(self.users), "-t", f"{max(1, round(self.seconds))}s",
            "--csv", str(self.prefix), "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "0",
            "--order-tag", self.tag, "--user-rate", f"{self.user_rate:g}", *self.extra, *self.user_classes,
        ]  # fmt: skip
        log = open(f"{self.prefix}_locust.log", "wb")  # noqa: SIM115 - kept for the child's lifetime
        self.started_at = time.time()
        self.popen = subprocess.Popen(argv, cwd=BASE_DIR, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return self

    def running(self) -> bool:
        return self.popen is not None and self.popen.returncode is None

    def wait(self, on_tick: Callable[[], None] | None = None) -> None:
        """Wait for Locust to finish (killing it past its time plus a minute) and keep its CPU time."""
        assert self.popen is not None
        self.cpu_seconds = wait_reaping(self.popen, time.monotonic() + self.seconds + 60, on_tick)
        self.ended_at = time.time()

    def stats(self, prefix: str, *, exact: bool = False) -> LocustStats:
        """The row of Locust's stats CSV named `prefix`, else the first whose name starts with it
        (e.g. "POST /api/orders/"): "POST /api/orders/async" is the 202s, not its "[sold out]" row."""
        path = Path(f"{self.prefix}_stats.csv")
        if not path.exists():
            raise RuntimeError(f"Locust wrote no stats; see {self.prefix}_locust.log")
        with path.open() as fh:
            rows = [r for r in csv.DictReader(fh) if r["Name"].startswith(prefix)]
        row = next((r for r in rows if r["Name"] == prefix), rows[0] if rows and not exact else None)
        if row is None:
            return LocustStats(prefix, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        percentiles = {k: _num(v) for k, v in row.items() if k.endswith("%")}
        return LocustStats(
            name=row["Name"],
            requests=int(row["Request Count"]),
            failures=int(row["Failure Count"]),
            median_ms=_num(row["Median Response Time"]),
            avg_ms=_num(row["Average Response Time"]),
            p95_ms=percentiles.get("95%", 0.0),
            p99_ms=percentiles.get("99%", 0.0),
            max_ms=_num(row["Max Response Time"]),
            rps=_num(row["Requests/s"]),
            percentiles_ms=percentiles,
        )


def _num(value: str) -> float:
    try:
        return float(value)
    except ValueError:  # "N/A" when nothing was recorded
        return 0.0


@dataclass
class Sampler:
    """Sample queue depth, order counts and worker memory once a second in a background thread."""

    queue: Queue
    count_orders: Callable[[], dict[str, int]]
    worker_pid: int | None = None
    interval: float = 1.0
    on_sample: Callable[[dict], None] | None = None
    origin: float = field(default_factory=time.time)
    samples: list[dict] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[dict]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        return self.samples

    def sample(self) -> dict:
        now = time.time()
        row = {"t": round(now - self.origin, 2), "at": now, **self.queue.depth(), **self.count_orders()}
        if self.worker_pid:
            row.update({f"worker_{k}": v for k, v in tree_memory(self.worker_pid).items()})
        return row

    def _run(self) -> None:
        try:  # the thread has its own database connection; close it when the thread ends
            while not self._stop.is_set():
                began = time.monotonic()
                row = self.sample()
                self.samples.append(row)
                if self.on_sample is not None:
                    self.on_sample(row)
                self._stop.wait(max(0.0, self.interval - (time.monotonic() - began)))
        finally:
            connection.close()


def post_orders(host: str, tag: str, count: int, *, skus: list[str], threads: int = 8) -> int:
    """Place `count` async orders quickly (for the memory runs); return how many were accepted."""

    def place(i: int) -> bool:
        order = {
            "email": f"buyer-{i}@{tag}.{EMAIL_DOMAIN}",
            "items": [{"sku": skus[i % len(skus)], "quantity": 1 + i % 3}],
        }
        return client.post("/api/orders/async", json=order).status_code == 202

    with httpx.Client(base_url=host, timeout=30) as client, ThreadPoolExecutor(threads) as pool:
        return sum(pool.map(place, range(count)))


def postgres_pid() -> int | None:
    """The PostgreSQL postmaster (its children are every backend), if one runs here."""
    for proc in psutil.process_iter(["name", "ppid"]):
        try:
            if proc.info["name"] == "postgres" and psutil.Process(proc.info["ppid"]).name() != "postgres":
                return proc.pid
        except psutil.Error:
            continue
    return None
