"""The study's knobs (full and --quick presets) and the wall time they imply, phase by phase.

The estimate is arithmetic on the parameters plus a few fixed costs measured on the 2-core lab
machine (OVERHEAD below: a worker's start, a Locust start, resetting the queue and the provider).
It bounds each phase by what the phase waits for (load seconds, drain caps, steps), so the full
preset is kept within 42 minutes and --quick within 9 by construction; `make experiment` prints the
estimate first and the report puts each phase's estimate beside the time it took.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, fields
from pathlib import Path

from loadtests.bench import POLL_SECONDS

# 35 and 6 minutes until the hot-product runs and the saturation phase came (issue 21): about 3 and
# 1 minutes more; 38 and 7 until the ETA accuracy run (issue 23): 2.5 and 1 more; then the sync
# checkout behind its queue (issue 23): one more sync load, about 1.4 and 0.5 minutes.
FULL_BUDGET_SECONDS = 42 * 60
QUICK_BUDGET_SECONDS = 9 * 60

# Fixed costs, seconds, measured on the lab machine (2 cores, shared): see the report's phase table.
OVERHEAD = {
    "stack": 15.0,  # PostgreSQL database, migrate, catalogue, SQS server, sandbox, web
    "locust": 3.0,  # Locust's start and its users' spawn, plus reading its CSVs
    "worker": 5.0,  # a celery worker of up to 200 threads until "ready"
    "reset": 4.0,  # restart the SQS server (+ create_queues) or the sandbox between runs
    "order": 0.006,  # creating one queued order for the drain study (ORM, PostgreSQL)
    "fill": 1 / 3000,  # one message of an SQS backlog sent in batches of 10
    "restock": 1.2,  # set the hot product's stock, then wait out the web's sold-out memory (1 s)
    "wrk": 1.0,  # wrk's start and stop, and counting its orders
    "report": 10.0,  # charts and report.md
}
# The study's phases in the order they run, by the slug `--phases` takes (the estimate's names,
# hyphenated). The stack and the report are not phases one can skip.
PHASES = (
    "sqs-ceilings", "eta-accuracy", "sync-checkout", "sync-with-the-checkout-queue", "async-accept",
    "sold-out", "drain-study", "flash-sale-scaling", "capacity", "saturation", "memory",
)  # fmt: skip
FIXED = ("stack", "report")


def slug(phase: str) -> str:
    return phase.replace(" ", "-")


# The drain study's estimate assumes at least this efficiency; its own deadline bounds a worse run.
DRAIN_EFFICIENCY_FLOOR = 0.8


@dataclass(frozen=True)
class StudyConfig:
    quick: bool
    users: int
    user_rate: float
    duration: float
    latency: float
    workers: tuple[int, ...]  # the flash-sale scaling runs' N
    provider_limits: tuple[int, ...]  # both studies; 0 = no limit
    drain_cap: float  # seconds the flash-sale runs watch the queue after the load
    drain_workers: tuple[int, ...]  # the drain study's N
    drain_waves: int  # the drain study queues min(N, limit) × waves orders (no provider limit)
    drain_limited_waves: int  # the same with the provider limited: it only shows the provider's pace
    drain_threads: int  # most threads per worker process in the drain study (N above it: more processes)
    accept_seconds: float
    ceiling_depths: tuple[int, ...]
    ceiling_seconds: float
    ceiling_threads: int
    capacity_rates: tuple[float, ...]
    capacity_seconds: float
    saturation_seconds: float  # per wrk target (GET, unlimited checkout, hot checkout); 0 skips them
    saturation_rounds: int  # every target once a round, the order reversed every other round
    saturation_connections: int
    saturation_threads: int
    prefork: int  # pool size of the prefork vs threads memory runs; 0 skips them
    eta_workers: int  # the ETA run's worker threads (no provider limit); 0 skips it
    eta_duration: float  # seconds of the ETA run's flash-sale load
    eta_samples: int  # about this many of its orders are read (one in orders ÷ samples, by arrival)
    eta_reread: float  # seconds between a sampled order's reads while it waits
    out: Path
    database_url: str | None
    database_name: str
    phases: tuple[str, ...] = ()  # the phases to run, by their slugs (PHASES); empty: every phase

    @property
    def probe_users(self) -> int:
        return 2  # loadtests/locustfile.py: CatalogueUser.fixed_count when named

    @property
    def eta_orders(self) -> float:
        """The orders the ETA run's load asks for."""
        return self.users * self.user_rate * self.eta_duration

    @property
    def eta_drain(self) -> float:
        """Seconds the ETA run's backlog should take to drain after its load, at the drain floor."""
        if not self.eta_workers:
            return 0.0
        rate = self.eta_workers / self.latency * DRAIN_EFFICIENCY_FLOOR
        return max(0.0, self.eta_orders / rate - self.eta_duration) + self.latency

    @property
    def eta_drain_cap(self) -> float:
        """The ETA run watches its drain at most this long: every sampled order must be paid to count."""
        return 2 * self.eta_drain + 10

    def runs(self, phase: str) -> bool:
        """Whether `phase` (its name, as in the estimate) is one this run was asked for."""
        return not self.phases or slug(phase) in self.phases

    def estimate(self) -> dict[str, float]:
        """Seconds each phase should take, from its parameters (see the module docstring); 0 for
        the phases this run skips."""
        every = self._estimate()
        return {name: seconds if name in FIXED or self.runs(name) else 0.0 for name, seconds in every.items()}

    def _estimate(self) -> dict[str, float]:
        o = OVERHEAD
        runs = [
            (min(n, limit) if limit else n, self.drain_limited_waves if limit else self.drain_waves)
            for limit in self.provider_limits
            for n in self.drain_workers
        ]

        def per_drain(slots: int, waves: int) -> float:
            queued = slots * waves * o["order"]
            return queued + o["worker"] + waves * self.latency / DRAIN_EFFICIENCY_FLOOR + POLL_SECONDS + 0.5

        memory_wave = 3 * self.latency / DRAIN_EFFICIENCY_FLOOR  # 3 × N orders on N slots
        accept_run = o["locust"] + self.accept_seconds + 2
        # One flash-sale run drained to its last order, the queue emptied after it.
        eta_run = (
            o["worker"] + o["locust"] + self.eta_duration + self.eta_drain + o["reset"] + POLL_SECONDS + 0.5
        )
        return {
            "stack": o["stack"],
            "sqs ceilings": sum(d * o["fill"] + 2 * self.ceiling_seconds + 2 for d in self.ceiling_depths),
            "eta accuracy": eta_run if self.eta_workers else 0.0,
            # The provider, the web without the queue, then the web and the SQS server again.
            "sync checkout": o["locust"] + self.duration + 3 * o["reset"],
            # The same, with the queue; then the charges admitted before the load ended (≤ 2).
            "sync with the checkout queue": o["locust"] + self.duration + 2 * self.latency + 3 * o["reset"],
            # Unlimited baskets, then the hot product (restocked).
            "async accept": accept_run * 2 + o["restock"],
            "sold out": accept_run + o["restock"],
            "flash-sale scaling": len(self.workers)
            * len(self.provider_limits)
            * (o["worker"] + o["locust"] + self.duration + self.drain_cap + o["reset"]),
            "drain study": sum(per_drain(slots, waves) for slots, waves in runs),
            "capacity": len(self.capacity_rates) * (o["locust"] + self.capacity_seconds + o["reset"]),
            # GET, unlimited and hot checkout a round; the queue emptied after each checkout.
            "saturation": self.saturation_rounds * (3 * (self.saturation_seconds + o["wrk"]) + 2 * o["reset"])
            + o["restock"]
            if self.saturation_seconds
            else 0.0,
            "memory": 2 * (o["worker"] + memory_wave + o["reset"] + 2) if self.prefork else 0.0,
            "report": o["report"],
        }


# Defaults: (full run, --quick).
PRESETS: dict[str, tuple] = {
    "users": (20, 20),
    "duration": (60.0, 10.0),
    "latency": (3.0, 1.0),
    "workers": ((1, 5, 20, 100, 200), (1, 20, 200)),
    "provider_limits": ((1, 0), (1, 0)),
    "drain_cap": (25.0, 3.0),
    "drain_workers": ((1, 5, 20, 100, 200), (1, 5, 20, 100, 200)),
    "drain_waves": (20, 3),  # at N = 200, 4,000 queued jobs: the seed's backlog
    "drain_limited_waves": (8, 3),
    # One worker process at every N: since payment is one statement on PostgreSQL, a process of 200
    # threads pays at η ≥ 0.93 (it was 0.89); `--drain-threads 50` splits N as the last runs did.
    "drain_threads": (200, 200),
    "accept_seconds": (60.0, 10.0),
    "ceiling_depths": ((0, 1000, 10000), (0, 1000, 10000)),
    "ceiling_seconds": (5.0, 1.5),
    "capacity_rates": ((10, 20, 40, 60, 80, 120, 160), (60,)),
    "capacity_seconds": (12.0, 4.0),
    "saturation_seconds": (10.0, 5.0),
    "saturation_rounds": (4, 2),
    "prefork": (20, 0),
    # The seed's 60/s against 100 threads at 3 s (33/s): a backlog of ~1,600 at the load's end, and
    # past the rate's first minute; --quick: 20 threads at 1 s, a backlog of ~400, drained in ~30 s.
    "eta_workers": (100, 20),
    "eta_duration": (60.0, 10.0),
    "eta_samples": (200, 100),
    "eta_reread": (10.0, 5.0),
}


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(part) for part in text.split(",") if part.strip())


def _phases(text: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    if unknown := [name for name in chosen if name not in PHASES]:
        raise argparse.ArgumentTypeError(f"unknown phase(s) {', '.join(unknown)}; any of {', '.join(PHASES)}")
    return chosen


def build_parser(default_out: Path) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.experiment",
        description=(
            "Run the flash-sale load study on a stack this command starts and stops (PostgreSQL when "
            "reachable): SQS server ceilings, the place in line's ETA against the actual paid times, sync "
            "checkout, async accept latency beside a trivial GET "
            "(unlimited baskets and the one limited product), the limited product selling out, "
            "worker scaling under the flash-sale load and as a drain of a queued backlog (both provider "
            "limits), capacity, saturation under wrk, worker memory; write "
            "reports/<timestamp>/report.md, results.json, raw CSVs and PNG charts."
        ),
        epilog="Defaults shown as full / --quick. Example: make experiment ARGS='--quick --workers 1,20'",
    )
    add = parser.add_argument
    add("--quick", action="store_true", help="Short loads, 1 s payments, fewer runs: about 7 to 8 minutes.")
    add("--users", type=int, help="Locust users per load run (20 / 20, the seed's).")
    add("--duration", type=float, help="Seconds of load per flash-sale and sync run (60 / 10).")
    add("--user-rate", type=float, default=3.0, help="Checkouts/s each user aims for (3: 20 users ≈ 60/s).")
    add("--latency", type=float, help="Seconds per charge at the payment sandbox (3 / 1).")
    add("--workers", type=_ints, help="N of the flash-sale scaling runs (1,5,20,100,200 / 1,20,200).")
    add("--provider-limits", type=_ints, help="Provider limits of both studies; 0 = none (1,0).")
    add(
        "--drain-cap",
        type=float,
        help="Watch the queue at most this long after a flash-sale load (25 / 3 s).",
    )
    add("--drain-workers", type=_ints, help="N of the drain study (1,5,20,100,200 both).")
    add(
        "--drain-waves", type=int, help="The drain study queues N × waves orders, no provider limit (20 / 3)."
    )
    add(
        "--drain-limited-waves",
        type=int,
        help="The drain study queues limit × waves orders with the provider limited (8 / 3).",
    )
    add(
        "--drain-threads",
        type=int,
        help="Most threads per worker process in the drain study; a larger N runs as several (200).",
    )
    add(
        "--accept-seconds",
        type=float,
        help="Seconds of each async accept-latency run: unlimited, hot product, sold out (60 / 10).",
    )
    add(
        "--ceiling-depths", type=_ints, help="SQS backlogs to measure the server's ceiling at (0,1000,10000)."
    )
    add("--ceiling-seconds", type=float, help="Seconds per ceiling measurement, send and receive (5 / 1.5).")
    add("--ceiling-threads", type=int, default=8, help="boto3 threads measuring the SQS server (8).")
    add("--capacity-rates", type=_floats, help="Target accept rates (orders/s) of the capacity steps.")
    add("--capacity-seconds", type=float, help="Seconds per capacity step (12 / 4).")
    add(
        "--saturation-seconds",
        type=float,
        help="Seconds of wrk per saturation target (GET, unlimited and hot checkout) a round; 0 skips them "
        "(10 / 5).",
    )
    add(
        "--saturation-rounds",
        type=int,
        help="Rounds of the saturation targets, every other one in reverse order (4 / 2).",
    )
    add("--saturation-connections", type=int, default=16, help="wrk's connections, always busy (16).")
    add("--saturation-threads", type=int, default=2, help="wrk's threads (2).")
    add("--prefork", type=int, help="Pool size of the prefork vs threads memory runs; 0 skips (20 / 0).")
    add(
        "--eta-workers",
        type=int,
        help="Worker threads of the ETA accuracy run (no provider limit); 0 skips it (100 / 20).",
    )
    add("--eta-duration", type=float, help="Seconds of the ETA run's flash-sale load (60 / 10).")
    add("--eta-samples", type=int, help="About how many of the ETA run's orders are read (200 / 100).")
    add("--eta-reread", type=float, help="Seconds between a sampled order's reads while it waits (10 / 5).")
    add(
        "--phases",
        type=_phases,
        default=(),
        help=f"Run only these phases, comma-separated (default: all): {', '.join(PHASES)}.",
    )
    add("--out", type=Path, default=default_out, help="Where the timestamped report folder goes.")
    add(
        "--database-url",
        help="PostgreSQL server to create the study's database on (default: DATABASE_URL, else "
        "127.0.0.1:5432). PostgreSQL is required.",
    )
    add("--database-name", default="flashsale_experiment", help="The fresh PostgreSQL database's name.")
    return parser


def resolve(args: argparse.Namespace) -> StudyConfig:
    """Fill unset options from the full or quick preset, check them, and freeze them."""
    column = 1 if args.quick else 0
    values = {name: getattr(args, name, None) for name in (f.name for f in fields(StudyConfig))}
    for name, preset in PRESETS.items():
        if values[name] is None:
            values[name] = preset[column]
    config = StudyConfig(**values)
    if (
        min(config.workers + config.drain_workers) < 1
        or config.users < 1
        or min(config.drain_waves, config.drain_limited_waves) < 1
    ):
        raise SystemExit("workers, users and waves must be ≥ 1")
    if config.duration <= 0 or config.latency <= 0 or config.accept_seconds <= 0:
        raise SystemExit("durations and latency must be > 0")
    if (
        config.saturation_seconds < 0
        or min(config.saturation_connections, config.saturation_threads, config.saturation_rounds) < 1
    ):
        raise SystemExit("saturation seconds must be ≥ 0 (0 skips), its connections, threads and rounds ≥ 1")
    if config.eta_workers < 0 or (
        config.eta_workers and (config.eta_duration <= 0 or config.eta_samples < 1 or config.eta_reread <= 0)
    ):
        raise SystemExit("the ETA run's workers must be ≥ 0 (0 skips it), its seconds > 0, its samples ≥ 1")
    if config.saturation_threads > config.saturation_connections:
        raise SystemExit("wrk needs at least one connection per thread")
    return config


def payment_timeout(config: StudyConfig) -> int:
    """A charge may wait behind every other worker's at a limit-1 provider."""
    return math.ceil(max(config.workers + config.drain_workers) * config.latency * 1.2 + 30)
