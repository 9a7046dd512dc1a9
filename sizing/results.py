"""The lab's results: what each phase returns, what `reports/<run>/results.json` holds, what reads it.

These dataclasses are the one schema of results.json. `make experiment` (loadtests/study/) fills
`StudyResults` and `StudyResults.dump()` writes it (`asdict`: each field its JSON key);
`StudyResults.load()` reads a file back into the same dataclasses, and everything that reads a run
reads it through them: the report (loadtests/report.py), `manage.py recommend_workers` and
`python -m deploy` (sizing/recommend.py). The drain study's runs are `DrainRun`s
(`StudyResults.drain`). No Django here: the report, deploy and the tests
import it without a database.

Schema 2 added the drain study (`drain`); schema 1 files (before it) are still read. A field added
since has a default, so an older file still loads.
"""

from __future__ import annotations

import itertools
import json
import types
import typing
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

from sizing.measure import Drain, percentile

SCHEMA_VERSION = 2
READABLE = (1, 2)


class ResultsError(Exception):
    """A results.json that is missing, unreadable, of a schema this shop cannot read, or not these
    dataclasses' JSON."""


T = TypeVar("T")

# A process tree using at least this share of one core is at the ceiling of one Python (or Node)
# process: the GIL (or the event loop) lets it use little more.
ONE_CORE = 0.9
# The machine is saturated when its busy CPU reaches this share of all its cores.
MACHINE_BUSY = 0.9
LABELS = {
    "locust": "the load generator (Locust)",
    "wrk": "the load generator (wrk)",
    "web": "the web (gunicorn, 2 processes)",
    "sqs": "the SQS server",
    "worker": "the worker",
    "postgres": "PostgreSQL",
    "sandbox": "the payment sandbox",
    "bench": "the lab's own process",
}
# Process trees with more than one process (or busy thread: wrk runs 2) can use more than one core.
PROCESSES_PER_TREE = {"web": 2, "postgres": 4, "wrk": 2}
# AcceptRun.product: today's baskets, one unit of the limited product, and that product selling out.
PRODUCT_LABELS = {
    "unlimited": "unlimited basket",
    "hot": "hot product, 1 unit",
    "sold-out": "hot product selling out",
}


@dataclass(frozen=True)
class CpuShares:
    """CPU seconds per process tree over `wall` seconds, and the whole machine's busy CPU."""

    wall: float
    machine: float  # busy CPU seconds of every core, whoever used them
    cores: int
    processes: dict[str, float]  # name -> CPU seconds of that process and its children
    steal: float = 0.0  # of `machine`: seconds the hypervisor ran other guests on our cores

    @classmethod
    def from_meter(cls, seconds: dict[str, float], *, cores: int) -> CpuShares:
        """From `CpuMeter.stop()` (or a DrainRun's cpu_seconds): 'wall', 'machine', 'steal' and one
        key a tree."""
        processes = {k: v for k, v in seconds.items() if k not in ("wall", "machine", "steal")}
        return cls(
            seconds.get("wall", 0.0), seconds.get("machine", 0.0), cores, processes, seconds.get("steal", 0.0)
        )

    @classmethod
    def pooled(cls, shares: Sequence[CpuShares]) -> CpuShares:
        """Several meterings as one: seconds added up, so each counts for as long as it ran."""
        names = dict.fromkeys(name for s in shares for name in s.processes)
        return cls(
            sum(s.wall for s in shares),
            sum(s.machine for s in shares),
            shares[0].cores,
            {name: sum(s.processes.get(name, 0.0) for s in shares) for name in names},
            sum(s.steal for s in shares),
        )

    def share(self, name: str) -> float:
        """Cores used on average by `name` (CPU seconds ÷ wall seconds)."""
        return self.processes.get(name, 0.0) / self.wall if self.wall else 0.0

    @property
    def machine_cores(self) -> float:
        return self.machine / self.wall if self.wall else 0.0

    @property
    def steal_cores(self) -> float:
        return self.steal / self.wall if self.wall else 0.0

    @property
    def other_cores(self) -> float:
        """Busy CPU not used by any measured tree nor stolen: other work on this machine, the kernel."""
        used = sum(self.processes.values()) + self.steal
        return max(0.0, self.machine - used) / self.wall if self.wall else 0.0

    @property
    def limit(self) -> str:
        """What the CPU says limited the run, in words; "" when nothing was near a ceiling."""
        if self.machine_cores >= MACHINE_BUSY * self.cores:
            return f"machine saturated ({self.machine_cores:.2f} of {self.cores} cores busy)"
        for name, share in sorted(((n, self.share(n)) for n in self.processes), key=lambda p: -p[1]):
            if share >= ONE_CORE * PROCESSES_PER_TREE.get(name, 1):
                return f"{LABELS.get(name, name)} at its CPU ceiling ({share:.2f} cores)"
        return ""


@dataclass(frozen=True)
class LocustStats:
    """One row of Locust's stats CSV (one request name)."""

    name: str
    requests: int
    failures: int
    median_ms: float
    avg_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    rps: float
    percentiles_ms: dict[str, float] = field(default_factory=dict)

    @property
    def success_rate(self) -> float:
        return (self.requests - self.failures) / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class OrderCounts:
    orders: int
    accepted: int
    processing: int
    paid: int
    failed: int

    @property
    def open(self) -> int:
        return self.accepted + self.processing


@dataclass(frozen=True)
class ProviderSummary:
    """The payment sandbox's ledger after a run (the independent witness)."""

    requests: int
    charges: int
    max_in_flight: int
    max_waiting: int
    keys_charged_more_than_once: int

    @classmethod
    def from_stats(cls, stats: dict) -> ProviderSummary:
        return cls(*(int(stats.get(f.name) or 0) for f in fields(cls)))


@dataclass(frozen=True)
class Environment:
    started_at: str
    cpu_count: int
    cpu_model: str
    memory_gb: float
    load_average_at_start: list[float]
    platform: str
    python: str
    versions: dict[str, str]
    database: str  # e.g. "PostgreSQL 15.19": the database of every phase but the second accept run
    git_commit: str
    web: str
    worker_pool: str
    finished_at: str = ""
    wall_seconds: float = 0.0
    load_average_at_end: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class PhaseTiming:
    name: str
    estimated_seconds: float  # from the parameters, before the run (loadtests/study/config.py)
    seconds: float  # what it took


@dataclass(frozen=True)
class SqsCeiling:
    """The SQS server alone at a backlog of `depth`: SendMessage/s, then received-and-deleted/s."""

    depth: int
    threads: int
    sends: int
    send_seconds: float
    received: int  # received and deleted (ReceiveMessage of 10 + DeleteMessageBatch)
    receive_seconds: float
    client_cores: float  # CPU of the boto3 threads (this process) ÷ wall, both measurements
    server_cores: float  # CPU of the SQS server ÷ wall

    @property
    def send_rate(self) -> float:
        return self.sends / self.send_seconds if self.send_seconds else 0.0

    @property
    def receive_rate(self) -> float:
        return self.received / self.receive_seconds if self.receive_seconds else 0.0


@dataclass(frozen=True)
class SyncRun:
    """The pre-queue shop: checkout charges inside the request, provider limit 1, no workers."""

    users: int
    duration: float
    latency: float
    checkout: LocustStats
    orders: OrderCounts
    provider: ProviderSummary
    cpu: CpuShares

    @property
    def throughput(self) -> float:
        return (self.checkout.requests - self.checkout.failures) / self.duration


@dataclass(frozen=True)
class SyncQueueRun:
    """Sync checkout behind the checkout queue (orders/checkout_queue.py) at the same load and provider.

    Each customer retries a 503 `checkout_queue` after its Retry-After with the same key until a
    final answer (loadtests/locustfile.py, SyncQueueCheckoutUser).
    """

    users: int
    duration: float
    latency: float
    provider_limit: int
    checkout: LocustStats  # final answers: "POST /api/orders/sync" (201 paid; 402, 504 … failures)
    queued: LocustStats  # the 503 checkout_queue answers: "POST /api/orders/sync [checkout_queue]"
    waits: LocustStats  # per checkout, first try → final answer: "first try → final answer"
    past_timeout: int  # requests that reached the client's 30 s timeout
    orders: OrderCounts
    provider: ProviderSummary
    cpu: CpuShares
    paid_seconds: float  # from the first order's claim to the last one's payment
    paid: int  # orders paid in that span

    @property
    def requests(self) -> int:
        return self.checkout.requests + self.queued.requests

    @property
    def throughput(self) -> float:
        return (self.checkout.requests - self.checkout.failures) / self.duration

    @property
    def goodput(self) -> float:
        """Charges completed per second while the provider was in use (first claim to last payment)."""
        return self.paid / self.paid_seconds if self.paid_seconds else 0.0

    @property
    def ideal(self) -> float:
        """The provider's capacity, C / L."""
        return self.provider_limit / self.latency

    @property
    def efficiency(self) -> float:
        return self.goodput / self.ideal if self.ideal else 0.0

    @property
    def longest_request_ms(self) -> float:
        return max(self.checkout.max_ms, self.queued.max_ms)


@dataclass(frozen=True)
class StockCheck:
    """The hot product around a run, read from the database: what was for sale, what the run took,
    and whether more was held or sold than the stock (the constraint says never; this checks it)."""

    sku: str
    offered: int  # units for sale when the run began: stock − reserved − sold
    stock: int  # after the run, as every figure below
    reserved: int
    sold: int
    taken: int  # units the run's orders hold (one unit an order)
    sold_out_after: float | None = None  # seconds from the run's first order to its last, once sold out

    @property
    def oversold(self) -> int:
        return max(0, self.reserved + self.sold - self.stock)

    @property
    def left(self) -> int:
        return max(0, self.stock - self.reserved - self.sold)


@dataclass(frozen=True)
class AcceptRun:
    """Async checkout at the seed's load with no worker, beside a trivial GET in the same Locust run.

    `product` says what the crowd bought (PRODUCT_LABELS); a result saved before there was a choice
    reads back as "unlimited", which it was.
    """

    database: str
    users: int
    probe_users: int
    duration: float
    checkout: LocustStats  # POST /api/orders/async answered 202
    trivial_get: LocustStats  # GET /api/products from the probe users, same web, same seconds
    orders: int  # async orders in the database afterwards
    cpu: CpuShares
    product: str = "unlimited"  # "unlimited" | "hot" | "sold-out"
    refusals: LocustStats | None = None  # sold-out: the 409 out_of_stock, "POST /api/orders/async [sold out]"
    stock: StockCheck | None = None  # hot and sold-out: the limited product before and after

    @property
    def throughput(self) -> float:
        return (self.checkout.requests - self.checkout.failures) / self.duration

    @property
    def label(self) -> str:
        return PRODUCT_LABELS.get(self.product, self.product)


@dataclass(frozen=True)
class ScalingRun:
    """One worker count under the seed's flash-sale load (Locust), then the queue watched draining."""

    name: str
    workers: int
    provider_limit: int  # 0 = none
    latency: float
    users: int
    duration: float
    checkout: LocustStats
    orders: OrderCounts
    accepted_202: int
    incoming_rate: float  # orders created per second during the load
    peak_depth: int
    peak_visible: int
    backlog_at_load_end: int
    measured_rate: float  # paid per second, first claim to the last payment (or the stop)
    ideal_rate: float  # min(N, limit) / latency
    efficiency: float
    overhead_ms: float  # per order and busy slot, beyond the provider's latency
    drain: Drain
    time_to_paid_p50: float
    time_to_paid_p95: float
    provider: ProviderSummary
    cpu: CpuShares
    worker_ready_seconds: float
    worker_idle_rss_mb: float
    worker_peak_rss_mb: float
    first_claim: float | None
    load_start: float
    load_end: float
    stopped_at: float
    drained_at: float | None


@dataclass(frozen=True)
class DrainRun:
    """One drain-study run: K orders queued, then N worker threads (in `processes` processes) pay them."""

    name: str  # drain-w<N>-l<limit>: also the tag in its orders' emails
    workers: int
    provider_limit: int  # 0 = none
    latency: float
    orders: int
    paid: int
    failed: int
    charged_twice: int
    not_charged: int
    task_errors: int
    seconds: float  # first claim to last payment
    rate: float  # paid / seconds
    ideal_rate: float
    efficiency: float
    overhead_ms: float  # per order and busy thread, beyond the provider's latency
    provider_peak: int  # most charges the sandbox ran at once
    worker_rss_mb: float
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # per process, plus machine and wall
    processes: int = 1  # worker processes the N threads were split over (N / processes each)

    @property
    def _layout(self) -> str:
        return f" ({self.processes}×{self.workers // self.processes})" if self.processes > 1 else ""

    @property
    def line(self) -> str:
        limit = self.provider_limit or "none"
        cpu = ", ".join(f"{k} {v:.1f}" for k, v in self.cpu_seconds.items() if k not in ("wall",))
        workers = f"{self.workers}{self._layout}"
        return (
            f"N={workers:<4} limit {limit:<4} orders {self.orders:<5} paid {self.paid:<5} "
            f"{self.rate:6.2f}/s of {self.ideal_rate:6.2f}  η {self.efficiency:.3f}  "
            f"overhead {self.overhead_ms:5.0f} ms/order  errors {self.task_errors}  "
            f"twice {self.charged_twice}  "
            f"RSS {self.worker_rss_mb:.0f} MB  CPU s: {cpu}"
        )


@dataclass(frozen=True)
class EtaRead:
    """One `GET /api/orders/<id>` of a sampled order in the ETA run, and what its `queue` said."""

    order: str
    created_at: float  # epoch seconds: the order's accept
    read_at: float  # when the request was sent: the answer describes the order at this time or later
    nth: int  # 0: the first read after accept; 1, 2, …: the later ones, while the order waited
    status: str
    position: int | None  # None: no place in line (the order was already final)
    eta_seconds: int | None  # None: no place, or no payment in the rate's window yet

    @property
    def waiting(self) -> bool:
        return self.position is not None


def eta_error(read: EtaRead, paid_at: float | None) -> float | None:
    """Predicted minus actual paid time, seconds: read_at + eta_seconds - paid_at.

    Positive: the ETA said later than the order was paid (pessimistic). None when the read gave no
    ETA or the order was never paid.
    """
    if read.eta_seconds is None or paid_at is None:
        return None
    return read.read_at + read.eta_seconds - paid_at


@dataclass(frozen=True)
class EtaAccuracy:
    """The ETA against the actual paid time over one group of reads (all of them found the order
    waiting). The error is predicted minus actual (eta_error); relative, it is |error| ÷ the actual
    wait from the read to paid."""

    group: str  # "first" | "position" | "later" | "window"
    label: str
    reads: int  # reads that found the order waiting, with or without an ETA
    no_eta: int  # ... whose eta_seconds was null: no payment in the rate's window yet
    not_paid: int  # ... with an ETA, of an order never paid (failed, or open when the run stopped)
    measured: int  # reads with an ETA of an order paid: the figures below
    median_abs_error: float
    p90_abs_error: float
    median_error: float  # signed: > 0 the ETA said later than the order was paid
    median_relative_error: float
    p90_relative_error: float
    median_actual: float  # seconds from the read to paid
    median_predicted: float  # eta_seconds
    position_min: int
    position_max: int

    @classmethod
    def from_reads(
        cls, group: str, label: str, reads: list[EtaRead], paid_at: dict[str, float | None]
    ) -> EtaAccuracy:
        waiting = [r for r in reads if r.waiting]
        with_eta = [r for r in waiting if r.eta_seconds is not None]
        pairs = [(r, paid_at.get(r.order)) for r in with_eta]
        paid = [(r, at) for r, at in pairs if at is not None]
        errors = [r.read_at + (r.eta_seconds or 0) - at for r, at in paid]
        actual = [at - r.read_at for r, at in paid]
        # The read is sent before the server looks, so the actual wait is > 0 but for a payment
        # committing while the answer was built (milliseconds): those have no relative error.
        relative = [abs(e) / a for e, a in zip(errors, actual, strict=True) if a > 0]
        positions = [r.position or 0 for r in waiting]
        return cls(
            group=group,
            label=label,
            reads=len(waiting),
            no_eta=len(waiting) - len(with_eta),
            not_paid=len(pairs) - len(paid),
            measured=len(paid),
            median_abs_error=percentile([abs(e) for e in errors], 50),
            p90_abs_error=percentile([abs(e) for e in errors], 90),
            median_error=percentile(errors, 50),
            median_relative_error=percentile(relative, 50),
            p90_relative_error=percentile(relative, 90),
            median_actual=percentile(actual, 50),
            median_predicted=percentile([float(r.eta_seconds or 0) for r, _ in paid], 50),
            position_min=min(positions, default=0),
            position_max=max(positions, default=0),
        )


def eta_groups(
    reads: list[EtaRead], paid_at: dict[str, float | None], *, first_paid_at: float | None, window: float
) -> list[EtaAccuracy]:
    """The ETA's accuracy by group: every sample's first read, those by position tercile (equal
    counts, by the position the first read showed), the later reads, and every read by whether the
    rate's window held `window` seconds of the run's payments (before that the rate is payments
    so far ÷ the whole window, so it reads low and the ETA long)."""
    first = [r for r in reads if r.nth == 0 and r.waiting]
    later = [r for r in reads if r.nth > 0 and r.waiting]
    groups = [EtaAccuracy.from_reads("first", "first read after accept", first, paid_at)]
    ranked = sorted(first, key=lambda r: (r.position or 0, r.read_at))
    if len(ranked) >= 3:
        cuts = [len(ranked) * i // 3 for i in range(4)]
        for name, low, high in zip(("near", "middle", "far"), cuts, cuts[1:], strict=False):
            part = ranked[low:high]
            span = f"positions {part[0].position:,}–{part[-1].position:,}"
            label = f"first read, {name} third of the line ({span})"
            groups.append(EtaAccuracy.from_reads("position", label, part, paid_at))
    groups.append(EtaAccuracy.from_reads("later", "later reads, while the order waited", later, paid_at))
    waiting = first + later
    if first_paid_at is not None:
        full = first_paid_at + window
        groups.append(
            EtaAccuracy.from_reads(
                "window", f"every read, in the first {window:g} s of payments",
                [r for r in waiting if r.read_at < full], paid_at,
            )
        )  # fmt: skip
        groups.append(
            EtaAccuracy.from_reads(
                "window", f"every read, after the first {window:g} s of payments",
                [r for r in waiting if r.read_at >= full], paid_at,
            )
        )  # fmt: skip
    return groups


def eta_shrinks(reads: list[EtaRead]) -> tuple[int, int]:
    """(pairs whose ETA shrank, pairs): each order's consecutive reads that both gave an ETA."""
    by_order: dict[str, list[EtaRead]] = {}
    for r in sorted(reads, key=lambda r: (r.order, r.nth)):
        if r.eta_seconds is not None:
            by_order.setdefault(r.order, []).append(r)
    pairs = [(a, b) for rs in by_order.values() for a, b in itertools.pairwise(rs)]
    return sum(1 for a, b in pairs if (b.eta_seconds or 0) < (a.eta_seconds or 0)), len(pairs)


@dataclass(frozen=True)
class EtaRun:
    """How right the place in line's ETA was: a flash sale with a worker charging its backlog, every
    `every`-th order read soon after accept and every `reread_seconds` while it waited; after the
    drain, each read's predicted paid time (read + eta_seconds) against the order's paid_at."""

    name: str
    workers: int
    provider_limit: int
    latency: float
    users: int
    duration: float
    orders: OrderCounts
    every: int  # one order in `every`, by arrival, was sampled
    reread_seconds: float
    rate_window_seconds: float  # the ETA's rate: paid in this many seconds ÷ this many seconds
    sampled: int
    reads: int  # GETs answered 200, first and later
    read_errors: int  # GETs that failed or answered otherwise
    first_read_delay_p50: float  # seconds from accept to the first read
    waiting_before: int  # accepted orders of earlier runs in line when this one began
    paid_last_minute_before: int  # orders paid in the rate's window when this one began
    first_paid_at: float | None  # the run's first payment
    peak_position: int
    shrank: int  # an order's consecutive reads with an ETA: pairs where it shrank ...
    eta_pairs: int  # ... of all such pairs
    load_start: float
    load_end: float
    stopped_at: float
    drained_at: float | None  # None: open orders remained when the watch's cap passed
    groups: list[EtaAccuracy] = field(default_factory=list)

    @property
    def first(self) -> EtaAccuracy | None:
        return next((g for g in self.groups if g.group == "first"), None)


@dataclass(frozen=True)
class CapacityStep:
    target: float
    users: int
    checkout: LocustStats
    accepted: int
    accept_rate: float
    ok: bool


@dataclass(frozen=True)
class Capacity:
    p99_limit_ms: float
    steps: list[CapacityStep]

    @property
    def best(self) -> CapacityStep | None:
        passing = [s for s in self.steps if s.ok]
        return max(passing, key=lambda s: s.accept_rate) if passing else None


@dataclass(frozen=True)
class WrkStats:
    """One wrk run as its `done()` hook saw it (loadtests/wrk.py): counts, seconds and latency."""

    requests: int  # answered (any status), in `seconds`
    seconds: float
    non_2xx: int  # wrk's "Non-2xx or 3xx responses": status > 399
    socket_errors: int  # connect + read + write + timeout: requests without an answer
    timeouts: int
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class SaturationRun:
    """One target under wrk's closed loop: `connections` always busy, as fast as the stack answers."""

    name: str  # "get", "unlimited", "hot" ("get-end", the GET after the checkouts: before rounds)
    method: str
    path: str
    product: str  # what the checkout bought ("unlimited" | "hot"); "" for the GET
    connections: int
    threads: int
    duration: float
    wrk: WrkStats
    cpu: CpuShares
    orders: int = 0  # checkouts: the run's orders in the database (one a 202)
    unpublished_at_end: int = 0  # checkouts: orders whose payment job SQS had not taken when wrk stopped
    unpublished_after: int = 0  # ... when the lab stopped watching (publish_caught_up_seconds or its cap)
    publish_caught_up_seconds: float | None = None  # after wrk stopped; None: not within the watch
    round: int = 1  # the phase runs every target once a round (saturation.ORDER)

    @property
    def label(self) -> str:
        if self.name == "get-end":
            return f"{self.method} {self.path} (again, after the checkouts)"
        return f"{self.method} {self.path}" + (f" ({PRODUCT_LABELS[self.product]})" if self.product else "")

    @property
    def problems(self) -> list[str]:
        """What was not the expected answer: any non-2xx or unanswered request, and for a checkout,
        answers without an order (a 2xx other than 202 places none). Empty: every answer was good."""
        w = self.wrk
        found = []
        if w.non_2xx:
            found.append(f"{w.non_2xx:,} non-2xx answers")
        if w.socket_errors:
            found.append(f"{w.socket_errors:,} requests unanswered ({w.timeouts:,} timeouts)")
        # Every 202 is an order; requests still open when wrk stopped may add at most one a connection.
        if self.product and not w.requests - w.non_2xx <= self.orders <= w.requests + self.connections:
            found.append(f"{self.orders:,} orders for {w.requests - w.non_2xx:,} 2xx answers")
        return found


LOAD_GENERATORS = ("wrk", "bench", "locust")  # CpuShares trees that are the lab, not the shop


@dataclass(frozen=True)
class SaturationTarget:
    """A target's runs of every round, as one: requests and seconds added up."""

    runs: list[SaturationRun]

    @property
    def first(self) -> SaturationRun:
        return self.runs[0]

    @property
    def rate(self) -> float:
        seconds = sum(r.wrk.seconds for r in self.runs)
        return sum(r.wrk.requests for r in self.runs) / seconds if seconds else 0.0

    @property
    def cpu(self) -> CpuShares:
        return CpuShares.pooled([r.cpu for r in self.runs])

    @property
    def stack_ms(self) -> float:
        """The machine's busy CPU per answer (ms), stolen time and the load generators aside: what
        an answer cost the whole stack (web, PostgreSQL, the relay, the SQS server, the kernel)."""
        cpu = self.cpu
        own = cpu.machine - cpu.steal - sum(cpu.processes.get(k, 0.0) for k in LOAD_GENERATORS)
        return own / cpu.wall / self.rate * 1000 if cpu.wall and self.rate else 0.0

    def round_ratios(self, baseline: SaturationTarget) -> list[float]:
        """Each round's requests/s over the baseline's in the same round."""
        base = {r.round: r.wrk.rate for r in baseline.runs}
        return [r.wrk.rate / base[r.round] for r in self.runs if base.get(r.round)]


def saturation_targets(runs: Sequence[SaturationRun]) -> list[SaturationTarget]:
    """The phase's runs by target, in the order the targets first ran."""
    names = dict.fromkeys(r.name for r in runs)
    return [SaturationTarget([r for r in runs if r.name == name]) for name in names]


@dataclass(frozen=True)
class MemoryRun:
    pool: str
    concurrency: int
    orders: int
    paid: int
    idle_rss_mb: float
    peak_rss_mb: float
    peak_pss_mb: float
    processes: int


@dataclass(frozen=True)
class Parameters:
    quick: bool
    command: str
    users: int
    user_rate: float
    duration: float
    latency: float
    workers: list[int]
    provider_limits: list[int]
    drain_cap: float
    drain_workers: list[int]
    drain_waves: int
    accept_seconds: float
    ceiling_depths: list[int]
    ceiling_seconds: float
    ceiling_threads: int
    capacity_rates: list[float]
    capacity_seconds: float
    prefork: int
    estimated_seconds: float
    drain_threads: int = 0  # most threads per drain worker process; 0: a report from before (one process)
    drain_limited_waves: int = 0  # 0: a report from before (drain_waves at every limit)
    saturation_seconds: float = 0.0  # 0: a report from before the saturation phase
    saturation_connections: int = 0
    saturation_threads: int = 0
    saturation_rounds: int = 1  # 1: a report from before the rounds (one run per target, and get-end)
    eta_workers: int = 0  # 0: no ETA run (or a report from before it)
    eta_duration: float = 0.0
    eta_samples: int = 0
    eta_reread: float = 0.0


@dataclass
class StudyResults:
    """Everything one run measured; each phase fills its own field."""

    parameters: Parameters
    environment: Environment
    schema: int = SCHEMA_VERSION
    phases: list[PhaseTiming] = field(default_factory=list)
    sqs_ceilings: list[SqsCeiling] = field(default_factory=list)
    sync: SyncRun | None = None
    sync_queue: SyncQueueRun | None = None
    accept: list[AcceptRun] = field(default_factory=list)
    scaling: list[ScalingRun] = field(default_factory=list)
    drain: list[DrainRun] = field(default_factory=list)
    capacity: Capacity | None = None
    saturation: list[SaturationRun] = field(default_factory=list)
    memory: list[MemoryRun] = field(default_factory=list)
    eta: EtaRun | None = None

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> StudyResults:
        """Read a results.json (or the report directory holding it) back into these dataclasses."""
        path = path / "results.json" if path.is_dir() else path
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ResultsError(f"cannot read {path}: {exc}") from exc
        version = data.get("schema", 1) if isinstance(data, dict) else None
        if version not in READABLE:
            raise ResultsError(
                f"{path} has results schema {version}; this shop reads {', '.join(map(str, READABLE))}"
            )
        try:
            return from_json(cls, data)
        except (KeyError, TypeError, ValueError) as exc:
            raise ResultsError(f"{path} is not a results file of schema {version}: {exc}") from exc


def from_json(cls: type[T], data: Any) -> T:
    """Build dataclass `cls` from `asdict`-shaped JSON, field types guiding nested dataclasses."""
    hints = typing.get_type_hints(cls)
    kwargs = {f.name: _value(hints[f.name], data[f.name]) for f in fields(cls) if f.name in data}  # type: ignore[arg-type]
    return cls(**kwargs)


def _value(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return _value(inner, value)
    if origin is list:
        (inner,) = typing.get_args(hint)
        return [_value(inner, v) for v in value]
    if is_dataclass(hint):
        return from_json(hint, value)  # type: ignore[arg-type]
    return value
