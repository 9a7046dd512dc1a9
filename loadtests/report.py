"""Turn a study's typed results (sizing/results.py) into report.md and PNG charts.

Every figure in the tables comes from `StudyResults` (as saved in results.json, so
`python -m loadtests.report <report dir>` renders a saved run again); the only literal figures are
the seed's own, quoted in SEED and labelled as the seed's wherever they appear.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from sizing.measure import human_seconds
from sizing.recommend import ResultsError, worker_efficiency, worker_runs
from sizing.results import (
    AcceptRun,
    CpuShares,
    DrainRun,
    EtaAccuracy,
    LocustStats,
    ScalingRun,
    StockCheck,
    StudyResults,
    SyncQueueRun,
    SyncRun,
    saturation_targets,
)
from sizing.workers import Sizing

Add = Callable[[str], None]

# The seed report's own figures (HW7 report, 20 users, 60 s on AWS ECS), quoted for comparison.
SEED = {
    "sync": {"requests": "49", "failures": "20 (41%)", "median": "30,000 ms", "throughput": "0.4/s"},
    "async": {"requests": "3,430", "failures": "1 (0.03%)", "median": "41 ms", "throughput": "57/s"},
    "scaling": {
        1: ("0.33/s", "3,420", "2.9 hours"),
        5: ("1.67/s", "3,277", "32.7 min"),
        20: ("6.67/s", "2,579", "6.4 min"),
        100: ("33.3/s", "616", "18 sec"),
    },
    "target_rate": 60,
}
CPU_COLUMNS = ("locust", "web", "sqs", "worker", "postgres", "sandbox", "bench")


def write(report_dir: Path, results: StudyResults) -> Path:
    charts = {
        "queue_depth": _chart_queue_depth(report_dir, results),
        "response_times": _chart_response_times(report_dir, results),
        "processing_rate": _chart_processing_rate(report_dir, results),
    }
    path = report_dir / "report.md"
    path.write_text(render(results, charts, report_dir))
    return path


def render(results: StudyResults, charts: dict[str, str | None], report_dir: Path) -> str:
    out: list[str] = []
    add = out.append
    p, env = results.parameters, results.environment
    add(f"# Flash-sale checkout: load study ({'quick' if p.quick else 'full'} run, {env.started_at})\n")
    add("## Environment\n")
    add("| | |\n| --- | --- |")
    add(f"| database | **{env.database}** (every phase) |")
    add(f"| CPUs | {env.cpu_count} × {env.cpu_model or 'unknown model'}; {env.memory_gb} GB RAM |")
    add(
        f"| load average (1, 5, 15 min) | at start {', '.join(map(str, env.load_average_at_start))}; at end "
        f"{', '.join(map(str, env.load_average_at_end))} (other work shares this machine) |"
    )
    add(f"| payment latency | {p.latency:g} s per charge (sandbox) |")
    add(f"| provider limits studied | {', '.join(_limit(x) for x in p.provider_limits)} (sync run: 1) |")
    add(
        f"| flash-sale load | {p.users} Locust users × {p.user_rate:g} checkouts/s each, {p.duration:g} "
        f"s per "
        f"run, drain watched up to {p.drain_cap:g} s; N = {', '.join(map(str, p.workers))} |"
    )
    add(
        f"| drain study | N × {p.drain_waves} orders queued"
        + (f" (limit × {p.drain_limited_waves} with the provider limited)" if p.drain_limited_waves else "")
        + "; N = "
        f"{', '.join(map(str, p.drain_workers))}"
        + (f", at most {p.drain_threads} threads per worker process" if p.drain_threads else "")
        + " |"
    )
    add(f"| Python / platform | {env.python} / {env.platform} |")
    add(f"| versions | {', '.join(f'{k} {v}' for k, v in env.versions.items())} |")
    add(f"| web / workers | {env.web} / {env.worker_pool} |")
    add(f"| code | git {env.git_commit}; `{p.command}`; {env.wall_seconds:.0f} s wall time |")
    add("")
    _phases(results, add)
    add(
        "Every figure below was measured in this run, except the columns marked *seed*, which quote the "
        "seed report (AWS ECS, 3 s payments). CPU is in cores (CPU seconds ÷ wall seconds) per process "
        "tree, measured with psutil; *machine* is the whole machine's busy CPU, *other* what no measured "
        "tree used (other work on this shared machine, the kernel). A run names its limit when the "
        "machine was ≥ 90 % busy or one process tree sat at its one-core ceiling.\n"
    )
    _sync_vs_async(results, charts, add)
    _accept(results, add)
    _ceilings(results, add)
    _drain(results, add)
    _scaling(results, charts, add)
    _provider_limits(results, add)
    _capacity(results, add)
    _saturation(results, add)
    _memory(results, add)
    _sizing(results, report_dir, add)
    _eta(results, add)
    add("## Data files\n")
    add(
        "`results.json` (everything above; schema in `sizing/results.py`), `data/locust_<run>_stats.csv` "
        "(Locust's own statistics), `data/samples_<run>.csv` (one row a second: SQS visible / not visible / "
        "delayed, order counts by status, worker memory), `data/orders_<run>.csv` (every order: created, "
        "claimed, paid; the drain study's runs are `drain-w<N>-l<limit>`), `data/capacity.csv`, "
        "`data/saturation.csv` with `data/wrk_<target>_r<round>.txt` (wrk's own output) and `.lua` "
        "(its script), "
        "`data/eta_reads_<run>.csv` (the ETA run's every read: position, eta_seconds, paid after, error), "
        "`logs/` (each process's log).\n"
    )
    return "\n".join(out) + "\n"


def _phases(results: StudyResults, add: Add) -> None:
    if not results.phases:
        return
    add("| Phase | Estimated | Took |\n| --- | ---: | ---: |")
    for t in results.phases:
        add(f"| {t.name} | {t.estimated_seconds:.0f} s | {t.seconds:.0f} s |")
    total = sum(t.seconds for t in results.phases)
    add(f"| **total** | {results.parameters.estimated_seconds:.0f} s | {total:.0f} s |\n")


def _cpu_cells(cpu: CpuShares, limit: str | None = None) -> str:
    """A CPU table row; `limit` overrides the verdict (a split drain run judges each process)."""
    cells = [f"{cpu.share(k):.2f}" if k in cpu.processes else "—" for k in CPU_COLUMNS]
    verdict = cpu.limit if limit is None else limit
    return " | ".join([*cells, f"{cpu.other_cores:.2f}", f"{cpu.machine_cores:.2f}", verdict or "—"])


def _cpu_header() -> tuple[str, str]:
    names = [
        "Locust",
        "web",
        "SQS",
        "worker",
        "PostgreSQL",
        "sandbox",
        "lab",
        "other",
        "machine",
        "limited by",
    ]
    return " | ".join(names), " | ".join(["---:"] * (len(names) - 1) + ["---"])


def _unlimited(results: StudyResults) -> AcceptRun | None:
    """The accept run of today's baskets on the study's database (the first), the seed's comparison."""
    return next((a for a in results.accept if a.product == "unlimited"), None)


def _sync_vs_async(results: StudyResults, charts: dict, add: Add) -> None:
    sync, queued = results.sync, results.sync_queue
    asyn = _unlimited(results)
    if sync is None or asyn is None:
        return
    add("## 1. Sync vs async at the seed's load\n")
    rows: list[tuple[str, Callable[[LocustStats, float], str], str]] = [
        ("Requests", lambda s, _: f"{s.requests:,}", "requests"),
        ("Failures", lambda s, _: f"{s.failures:,} ({_pct(s.failures, s.requests)})", "failures"),
        ("Median response", lambda s, _: f"{s.median_ms:,.0f} ms", "median"),
        ("p99 response", lambda s, _: f"{s.p99_ms:,.0f} ms", ""),
        ("Successful checkouts/s", lambda _, t: f"{t:.1f}/s", "throughput"),
        ("Success rate", lambda s, _: f"{s.success_rate:.0%}", ""),
    ]
    middle = " Sync with the checkout queue |" if queued else ""
    add(f"| Metric | Sync |{middle} Async | Sync (*seed*) | Async (*seed*) |")
    add("| --- | ---: |" + (" ---: |" if queued else "") + " ---: | ---: | ---: |")
    for label, fmt, key in rows:
        seed = (SEED["sync"].get(key, "—"), SEED["async"].get(key, "—")) if key else ("—", "—")
        cell = f" {fmt(queued.checkout, queued.throughput)} |" if queued else ""
        first, last = fmt(sync.checkout, sync.throughput), fmt(asyn.checkout, asyn.throughput)
        add(f"| {label} | {first} |{cell} {last} | {seed[0]} | {seed[1]} |")
    if queued:
        _queue_rows(sync, queued, add)
    add("")
    o = sync.orders
    add(
        f"Sync: {sync.users} users for {sync.duration:g} s against a provider taking one "
        f"{sync.latency:g} s charge "
        f"at a time, no workers (the pre-queue shop). The database holds {o.orders:,} sync orders: "
        f"{o.paid:,} "
        f"paid, {o.processing:,} still waiting for the provider when the load stopped and "
        f"{o.accepted:,} handed "
        f"to the background after a 504; the provider made {sync.provider.charges:,} charges, at most "
        f"{sync.provider.max_in_flight} at once, with up to {sync.provider.max_waiting} requests queued. "
        f"Async: the accept run of section 2 ({asyn.database}, no worker).\n"
    )
    if queued:
        _queue_note(queued, add)
    if charts.get("response_times"):
        add(f"![Response-time percentiles, sync vs async vs a trivial GET]({charts['response_times']})\n")


def _queue_rows(sync: SyncRun, q: SyncQueueRun, add: Add) -> None:
    """The rows only the queue's column has: its 503s, the customers' whole waits, the provider's pace."""
    waits = f"{q.waits.median_ms / 1000:,.1f} s / {q.waits.p99_ms / 1000:,.1f} s"
    rows = [
        ("503 `checkout_queue` (Retry-After honoured)", f"{q.queued.requests:,}"),
        ("All requests (final answers + 503s)", f"{q.requests:,}"),
        ("First try → final answer, p50 / p99", waits),
        ("Longest single request", f"{q.longest_request_ms:,.0f} ms"),
        ("Requests past the 30 s timeout", f"{q.past_timeout:,}"),
        ("Paid orders", f"{q.orders.paid:,}"),
        (
            "Provider goodput ÷ C/L",
            f"{q.goodput:.3f}/s ÷ {q.ideal:.3f}/s = **{q.efficiency:.3f}**",
        ),
    ]  # fmt: skip
    plain = {
        "Longest single request": f"{sync.checkout.max_ms:,.0f} ms",
        "Paid orders": f"{sync.orders.paid:,}",
    }
    for label, cell in rows:
        add(f"| {label} | {plain.get(label, '—')} | {cell} | — | — | — |")


def _queue_note(q: SyncQueueRun, add: Add) -> None:
    o = q.orders
    add(
        f"Sync with the checkout queue: the same {q.users} users, {q.duration:g} s and provider, each "
        f"customer retrying a 503 `checkout_queue` after its Retry-After with the same Idempotency-Key "
        f"until a final answer (`SyncQueueCheckoutUser`). The row *Requests* counts final answers; "
        f"the 503s are counted apart. {o.orders:,} sync orders, {o.paid:,} paid ({o.failed:,} failed, "
        f"{o.open:,} open); the provider made {q.provider.charges:,} charges, at most "
        f"{q.provider.max_in_flight} at once with up to {q.provider.max_waiting} waiting (the one on "
        f"deck), {q.provider.keys_charged_more_than_once} keys charged twice. Goodput: {q.paid:,} orders "
        f"paid from the first claim to the last payment ({q.paid_seconds:,.1f} s), against the "
        f"provider's capacity C/L = {q.provider_limit} / {q.latency:g} s.\n"
    )


def _accept(results: StudyResults, add: Add) -> None:
    if not results.accept:
        return
    add("## 2. Async accept latency beside a trivial GET\n")
    first = results.accept[0]
    add(
        f"{first.users} Locust users checking out (`POST /api/orders/async`) and {first.probe_users} "
        f"probe users "
        "reading the catalogue (`GET /api/products`, a trivial DRF GET) in the same Locust run against the "
        f"same web, {first.duration:g} s, no worker. The ratio is the checkout's latency over the GET's."
        + (
            " What the crowd buys: the *unlimited basket* is 1–3 lines of unlimited products (the seed's "
            "load); the *hot product* is 1 unit of the one limited product at every checkout, with more "
            "on sale than the run can buy; *selling out* is that product with a third of the run's units "
            "on sale (its 409s are in the next table)."
            if any(a.product != "unlimited" for a in results.accept)
            else ""
        )
        + "\n"
    )
    add("| Database, product | Checkouts (fail) | Checkout p50 / p99 | GET p50 / p99 (requests) "
        "| p50 ratio | p99 ratio "
        "| Locust CPU | machine | limited by |")  # fmt: skip
    add("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for a in results.accept:
        add(_accept_row(a))
    add("")
    _by_path(results, add)


def _by_path(results: StudyResults, add: Add) -> None:
    """The flash sale by answer: each checkout path's latency beside the same run's GET (the study's
    database only: an older report's SQLite run, when it has one, stays in the table above)."""
    runs = [a for a in results.accept if a.database == results.accept[0].database]
    if len(runs) < 2:
        return
    add("### The flash sale, path by path\n")
    add(
        "Each checkout path beside the catalogue GET of the same Locust run (same web, same seconds). "
        "*202* is an order accepted; *409 out_of_stock* is the refusal once the product is sold out.\n"
    )
    add("| Path | Answers | Checkout p50 / p99 | GET p50 / p99 | Ratio p50 / p99 |")
    add("| --- | ---: | ---: | ---: | ---: |")
    for a in runs:
        rows = [(f"{a.label} → 202", a.checkout)]
        if a.refusals is not None:
            rows.append((f"{a.label} → 409 out_of_stock", a.refusals))
        for path, c in rows:
            g = a.trivial_get
            add(
                f"| {path} | {c.requests - c.failures:,}"
                + (f" ({c.failures} failed)" if c.failures else "")
                + f" | {c.median_ms:.0f} / {c.p99_ms:.0f} ms | {g.median_ms:.0f} / {g.p99_ms:.0f} ms "
                f"| {_ratio(c.median_ms, g.median_ms)} / {_ratio(c.p99_ms, g.p99_ms)} |"
            )
    add("")
    for a in runs:
        if a.stock is not None:
            add(_stock_line(a, a.stock))
    add("")


def _stock_line(a: AcceptRun, s: StockCheck) -> str:
    """What the run bought of the limited product, and the oversell check."""
    held = s.reserved + s.sold
    verdict = (
        f"**OVERSOLD by {s.oversold:,}** (reserved {s.reserved:,} + sold {s.sold:,} > stock {s.stock:,})"
        if s.oversold
        else f"no oversell (reserved {s.reserved:,} + sold {s.sold:,} = {held:,} ≤ stock {s.stock:,})"
    )
    refused = a.refusals.requests - a.refusals.failures if a.refusals is not None else 0
    when = (
        f"; sold out {s.sold_out_after:.1f} s after the run's first order, of {a.duration:g} s"
        if s.sold_out_after is not None
        else ("; not sold out" if a.product == "sold-out" else "")
    )
    return (
        f"- *{a.label}* (`{s.sku}`): {s.offered:,} units on sale, {s.taken:,} taken by {a.orders:,} orders; "
        f"{a.checkout.requests - a.checkout.failures:,} answered 202"
        + (f", {refused:,} answered 409 out_of_stock" if a.refusals is not None else "")
        + f"{when}; {verdict}."
    )


def _accept_row(a: AcceptRun) -> str:
    c, g = a.checkout, a.trivial_get
    return (
        f"| {a.database}, {a.label} | {c.requests:,} ({c.failures}) | {c.median_ms:.0f} / {c.p99_ms:.0f} ms "
        f"| {g.median_ms:.0f} / {g.p99_ms:.0f} ms ({g.requests:,}) | {_ratio(c.median_ms, g.median_ms)} "
        f"| {_ratio(c.p99_ms, g.p99_ms)} | {a.cpu.share('locust'):.2f} cores | {a.cpu.machine_cores:.2f} "
        f"of {a.cpu.cores} | {a.cpu.limit or '—'} |"
    )


def _ceilings(results: StudyResults, add: Add) -> None:
    if not results.sqs_ceilings:
        return
    env = results.environment
    add("## 3. The SQS server's own ceiling\n")
    add(
        f"fauxqs {env.versions.get('fauxqs', '?')} alone, before the shop ran, on a queue of its own "
        f"filled to "
        "each depth: boto3 threads send single `SendMessage` calls, then receive 10 at a time and delete "
        "them in batches until the backlog is back at its depth. The boto3 client is Python in this "
        "process: when it uses most of a core, the figure is the client's ceiling as much as the server's.\n"
    )
    add("| Backlog | Threads | SendMessage/s | Received and deleted/s | Client CPU | Server CPU |")
    add("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for c in results.sqs_ceilings:
        add(
            f"| {c.depth:,} | {c.threads} | {c.send_rate:,.0f} ({c.sends:,} in {c.send_seconds:.1f} s) "
            f"| {c.receive_rate:,.0f} ({c.received:,} in {c.receive_seconds:.1f} s) | "
            f"{c.client_cores:.2f} cores "
            f"| {c.server_cores:.2f} cores |"
        )
    add("")


def _layout(run: DrainRun) -> str:
    """The N column's suffix: processes by threads for a split drain run, nothing for one process."""
    return f" ({run.processes}×{run.workers // run.processes})" if run.processes > 1 else ""


def _drain(results: StudyResults, add: Add) -> None:
    if not results.drain:
        return
    add("## 4. Worker scaling as a drain: pure worker efficiency\n")
    add(
        "min(N, limit) × waves orders are created and their jobs published before N worker threads start "
        "(no load generator): one worker process up to the study's threads per process, several of equal "
        "size above it, as N (P×T) shows; one process runs its threads under one GIL, and production "
        "scales processes (ECS tasks) too. "
        "η = paid/s (first claim to last payment) ÷ min(N, limit) / latency; "
        "overhead = what each order cost a busy slot beyond the provider's latency; peak depth = the "
        "backlog queued; drain time = first claim to last payment, measured. Charged once and task errors "
        "come from the sandbox's ledger and the worker's log.\n"
    )
    head, rule = _cpu_header()
    for limit in dict.fromkeys(r.provider_limit for r in results.drain):
        runs = [r for r in results.drain if r.provider_limit == limit]
        add(f"### Provider limit: {_limit(limit)}\n")
        add("| N | Peak depth | Paid / failed | Paid/s | Ideal | η | Overhead | Drain time | Errors "
            "| Charged twice / never | Worker RSS |")  # fmt: skip
        add("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in runs:
            add(
                f"| {r.workers}{_layout(r)} | {r.orders:,} | {r.paid:,} / {r.failed} "
                f"| {r.rate:.2f} | {r.ideal_rate:.2f} "
                f"| **{r.efficiency:.3f}** | {r.overhead_ms:.0f} ms | {human_seconds(r.seconds)} "
                f"| {r.task_errors} | {r.charged_twice} / {r.not_charged} | {r.worker_rss_mb:.0f} MB |"
            )
        add(f"\nCPU (cores) during each run:\n\n| N | {head} |\n| ---: | {rule} |")
        for r in runs:
            add(f"| {r.workers}{_layout(r)} | {_cpu_cells(*_drain_cpu(r, results.environment.cpu_count))} |")
        add("")


def _drain_cpu(run: DrainRun, cores: int) -> tuple[CpuShares, str]:
    """The worker column sums a split run's processes (worker, worker-2, ...); the "limited by" verdict
    still looks at each process, since each has its own one-core ceiling."""
    per_process = CpuShares.from_meter(run.cpu_seconds, cores=cores)
    merged = {k: v for k, v in run.cpu_seconds.items() if not k.startswith("worker-")}
    merged["worker"] = sum(v for k, v in run.cpu_seconds.items() if k == "worker" or k.startswith("worker-"))
    return CpuShares.from_meter(merged, cores=cores), per_process.limit


def _scaling(results: StudyResults, charts: dict, add: Add) -> None:
    runs = results.scaling
    if not runs:
        return
    p = results.parameters
    add("## 5. Worker scaling under the flash-sale load (the seed's picture)\n")
    add(
        f"Each run: a fresh sandbox and one worker of N threads, then {p.users} Locust users × "
        f"{p.duration:g} s "
        f"of async checkouts, then the queue watched for up to {p.drain_cap:g} s. Queue depth is SQS's "
        "visible + in flight (+ delayed), sampled every second. Paid/s counts from the first claim to "
        "the last "
        "payment (or the end of the watch); η = that ÷ min(N, limit) / latency. The drain time is measured "
        "when the run's orders were all final within the watch, else extrapolated from the measured rate.\n"
    )
    head, rule = _cpu_header()
    for limit in dict.fromkeys(r.provider_limit for r in runs):
        subset = [r for r in runs if r.provider_limit == limit]
        add(f"### Provider limit: {_limit(limit)}\n")
        add("| N | Requests (fail) | p50 / p99 | Orders in | In rate | Peak depth | Paid/s | Ideal | η "
            "| η arrivals allow | Overhead | Drain time | Paid / failed / open "
            "| Charged twice |")  # fmt: skip
        add("|" + " ---: |" * 14)
        for r in subset:
            c, o = r.checkout, r.orders
            add(
                f"| {r.workers} | {c.requests:,} ({c.failures}) | {c.median_ms:.0f} / {c.p99_ms:.0f} ms "
                f"| {o.orders:,} | {r.incoming_rate:.1f}/s | {r.peak_depth:,} | {r.measured_rate:.2f} "
                f"| {r.ideal_rate:.2f} | **{r.efficiency:.2f}** | {_arrival_bound(r)} "
                f"| {r.overhead_ms:.0f} ms | {r.drain.label} "
                f"| {o.paid:,} / {o.failed} / {o.open:,} | {r.provider.keys_charged_more_than_once} |"
            )
        add(f"\nCPU (cores) over load and drain:\n\n| N | {head} |\n| ---: | {rule} |")
        for r in subset:
            add(f"| {r.workers} | {_cpu_cells(r.cpu)} |")
        add("")
    add(
        "*η arrivals allow*: when orders arrive more slowly than N / latency, the workers wait for work and "
        "η cannot exceed about incoming rate ÷ ideal (a bound of the load, not of the workers); the drain "
        "study measures them without that bound.\n"
    )
    target = p.users * p.user_rate
    short = [r for r in runs if r.incoming_rate < 0.9 * target]
    if short:
        add(
            f"Runs whose orders arrived at under 90 % of the {target:g}/s asked for (the load generator "
            f"or the "
            f"machine could not keep up): "
            f"{', '.join(f'`{r.name}` {r.incoming_rate:.1f}/s' for r in short)}.\n"
        )
    add(
        "The seed's table for comparison (*seed*: workers, processing rate, peak queue depth, drain time): "
        + "; ".join(f"{n}: {v[0]}, {v[1]}, {v[2]}" for n, v in SEED["scaling"].items())
        + ". The seed's rates are N × 0.33/s by formula, not measured.\n"
    )
    if charts.get("queue_depth"):
        add(f"![Queue depth over time per worker count]({charts['queue_depth']})\n")
    if charts.get("processing_rate"):
        add(f"![Processing rate vs workers, both studies, against the ideal]({charts['processing_rate']})\n")


def _arrival_bound(run: ScalingRun) -> str:
    """At most incoming ÷ ideal when the orders arrive slower than the workers could pay them."""
    return f"≤ {run.incoming_rate / run.ideal_rate:.2f}" if run.incoming_rate < run.ideal_rate else "1"


def _provider_limits(results: StudyResults, add: Add) -> None:
    limited = [r for r in results.drain if r.provider_limit == 1]
    flash = [r for r in results.scaling if r.provider_limit == 1]
    if not limited and not flash:
        return
    latency = results.parameters.latency
    add("## 6. The provider limited to one charge at a time\n")
    add(
        f"The provider's own ceiling is 1 / {latency:g} s = {1 / latency:.2f}/s whatever N. Share of it "
        f"held:\n"
    )
    add("| N | drain study | flash-sale load |\n| ---: | ---: | ---: |")
    for n in sorted({r.workers for r in limited} | {r.workers for r in flash}):
        d = next((f"{r.rate * latency:.2f}" for r in limited if r.workers == n), "—")
        f = next((f"{r.measured_rate * latency:.2f}" for r in flash if r.workers == n), "—")
        add(f"| {n} | {d} | {f} |")
    add("")


def _capacity(results: StudyResults, add: Add) -> None:
    cap = results.capacity
    if cap is None or not cap.steps:
        return
    add("## 7. Capacity: async accept rate on this machine\n")
    add(
        f"Async checkouts at rising target rates, no worker (the accept path: web, database, SQS); a step "
        f"passes with p99 below {cap.p99_limit_ms:g} ms and no failures.\n"
    )
    add("| Target | Users | Accepted | Accept rate | p50 | p99 | Failures | Passes |")
    add("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: |")
    for s in cap.steps:
        add(
            f"| {s.target:g}/s | {s.users} | {s.accepted:,} | {s.accept_rate:.1f}/s | "
            f"{s.checkout.median_ms:.0f} ms "
            f"| {s.checkout.p99_ms:.0f} ms | {s.checkout.failures} | {'yes' if s.ok else 'no'} |"
        )
    best = cap.best
    add(
        f"\nHighest accept rate with p99 < {cap.p99_limit_ms:g} ms: **{best.accept_rate:.1f} orders/s**.\n"
        if best
        else f"\nNo step kept p99 below {cap.p99_limit_ms:g} ms.\n"
    )


def _saturation(results: StudyResults, add: Add) -> None:
    runs = results.saturation
    if not runs:
        return
    first, rounds = runs[0], max(r.round for r in runs)
    targets = saturation_targets(runs)
    add("## 8. Saturation under wrk: the stack's ceiling\n")
    add(
        f"wrk (C, closed loop: {first.connections} connections on {first.threads} threads, each sending "
        f"its next request as soon as the last answer came), {first.duration:g} s per target and round, "
        f"{rounds} round(s), the targets' order reversed every other round so that a machine drifting "
        "over the phase shifts them alike; against the same web (no worker: the SQS queue fills, and is "
        "emptied after each checkout target). The checkout throttle is off on the lab's stack. *Requests/s* "
        "adds up every round of a target; *Ratio* is that over the GET's: the share of the framework's "
        "ceiling a checkout keeps; *Rounds* gives each round's ratio against the same round's GET. "
        "*Unpublished* counts accepted orders whose payment job SQS had not yet taken when wrk stopped, "
        "and when the lab stopped watching.\n"
    )
    get = next((t for t in targets if not t.first.product), None)
    get_rate = get.rate if get is not None else 0.0
    add(
        "| Target | Requests | Requests/s | Ratio | Rounds | p50 | p99 | Non-2xx "
        "| Unpublished at end → after |"
    )
    add("| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    for t in targets:
        ratio = _ratio(t.rate, get_rate, 2) if get is not None and t is not get else "—"
        each = ", ".join(f"{x:.2f}" for x in t.round_ratios(get)) if get is not None and t is not get else "—"
        p50 = sorted(r.wrk.p50_ms for r in t.runs)[len(t.runs) // 2]
        p99 = max(r.wrk.p99_ms for r in t.runs)
        published = (
            f"{sum(r.unpublished_at_end for r in t.runs):,} → {sum(r.unpublished_after for r in t.runs):,}"
            if t.first.product
            else "—"
        )
        add(
            f"| {t.first.label} | {sum(r.wrk.requests for r in t.runs):,} | {t.rate:,.0f} | {ratio} | {each} "
            f"| {p50:.1f} ms | {p99:.1f} ms | {sum(r.wrk.non_2xx for r in t.runs):,} | {published} |"
        )
    add(
        "\n*p50* is the middle round's median, *p99* the worst round's. Per round and target: "
        "`data/saturation.csv`.\n"
    )
    checkouts = [t for t in targets if t.first.product]
    if get is not None and checkouts:
        peak = max(checkouts, key=lambda t: t.rate)
        add(
            f"Peak checkout ÷ GET: **{_ratio(peak.rate, get_rate, 2)}** ({peak.first.label}, "
            f"{peak.rate:,.0f}/s against {get_rate:,.0f}/s)."
        )
        if get.stack_ms:
            costs = "; ".join(
                f"{t.first.label} {t.stack_ms:.2f} ms ({_ratio(get.stack_ms, t.stack_ms, 2)})"
                for t in checkouts
                if t.stack_ms
            )
            add(
                f"\nThe whole stack's CPU per answer (the machine's busy CPU, stolen time and wrk and the "
                f"lab aside): GET {get.stack_ms:.2f} ms; {costs}. In brackets, the GET's over the "
                "checkout's: the ratio the peaks tend to on these cores when nothing but CPU limits them "
                "and nothing is stolen; it moves less from run to run than the peaks do."
            )
    failed = [(r, r.problems) for r in runs if r.problems]
    for r, problems in failed:
        add(
            f"\n**FAILED: {r.label}, round {r.round}, was not answered as expected: {'; '.join(problems)}.** "
            f"See `data/wrk_{r.name}_r{r.round}.txt`."
        )
    if not failed:
        add("\nEvery request was answered, with a 2xx; every checkout answer placed an order (202).")
    columns = ("wrk", "web", "relay", "postgres", "sqs", "bench")
    add(
        "\nCPU (cores) per target, every round; the relay publishes the accepted orders' jobs "
        "(orders/relay.py); *stolen* is the cores' time the hypervisor gave other guests:\n"
    )
    add("| Target | wrk | web | relay | PostgreSQL | SQS | lab | other | stolen | machine | limited by |")
    add("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for t in targets:
        cpu = t.cpu
        cells = [f"{cpu.share(k):.2f}" if k in cpu.processes else "—" for k in columns]
        add(
            f"| {t.first.label} | {' | '.join(cells)} | {cpu.other_cores:.2f} | {cpu.steal_cores:.2f} "
            f"| {cpu.machine_cores:.2f} | {cpu.limit or '—'} |"
        )
    if get is not None and checkouts and get_rate and "web" in get.cpu.processes:
        # The same machine hosts PostgreSQL, the relay and the SQS server beside the web; production
        # runs them elsewhere. The web's CPU per answer says what the web alone would reach.
        per_get = get.cpu.share("web") / get_rate * 1000
        parts = [
            f"{t.first.label}: {t.cpu.share('web') / t.rate * 1000:.2f} ms "
            f"(**{per_get / (t.cpu.share('web') / t.rate * 1000):.2f}×**)"
            for t in checkouts
            if t.rate and t.cpu.share("web")
        ]
        add(
            f"\nThe web's CPU per answer: GET {per_get:.2f} ms; {'; '.join(parts)}. The ratio in bold is "
            "the GET's over the checkout's: the share of the framework's ceiling an accept keeps in the "
            "web alone, once PostgreSQL, the relay and the SQS server run on machines of their own, as in "
            "production. The peak ratio above is this machine's, where they share its cores."
        )
    add("")


def _memory(results: StudyResults, add: Add) -> None:
    rows = [
        (f"threads, drain N={r.workers}", r.worker_rss_mb, "—", 1)
        for r in results.drain
        if r.provider_limit == 0
    ]
    for m in results.memory:
        label = f"{m.pool}, memory run N={m.concurrency} ({m.orders} orders)"
        rows.append((label, m.peak_rss_mb, f"{m.peak_pss_mb:.0f} MB", m.processes))
    if not rows:
        return
    add("## 9. Worker memory\n")
    add(
        "Peak resident memory of the worker (all its processes: a prefork pool has one per slot); PSS shares "
        "copy-on-write pages fairly, the figure to compare with a container's limit.\n"
    )
    add("| Pool and run | Peak RSS | Peak PSS | Processes |\n| --- | ---: | ---: | ---: |")
    for label, rss, pss, procs in rows:
        add(f"| {label} | {rss:.0f} MB | {pss} | {procs} |")
    add("")


def _sizing(results: StudyResults, report_dir: Path, add: Add) -> None:
    latency = results.parameters.latency
    add("## 10. Sizing: workers = rate × latency\n")
    try:
        run = worker_efficiency(worker_runs(report_dir / "results.json"), near_workers=180)
    except ResultsError as exc:
        add(f"No measured efficiency to size with: {exc}.\n")
        return
    sizing = Sizing(SEED["target_rate"], latency, 0, run.efficiency or 1.0)
    add(
        f"`recommend_workers` reads this report's results.json: it takes the no-limit run of the "
        f"{run.source} nearest the seed's 180 workers, {run.name} (η {run.efficiency:.2f}). For the seed's "
        f"{SEED['target_rate']}/s at {latency:g} s: formula {sizing.ideal_workers} workers, with the "
        f"measured "
        f"efficiency {sizing.workers}; with the provider limited to 1 the rate is out of reach "
        f"({1 / latency:.2f}/s at most).\n"
    )
    add(
        f"`python manage.py recommend_workers --rate 60 --latency {latency:g} --provider-limit 0 "
        "--report <this folder>` prints the same recommendation.\n"
    )


def _eta(results: StudyResults, add: Add) -> None:
    run = results.eta
    if run is None:
        return
    window = f"{run.rate_window_seconds:g} s"
    add("## 11. The place in line: its ETA against the actual paid time\n")
    add(
        f"One flash sale drained to its last order: {run.users} users × {run.duration:g} s of async "
        f"checkouts, a worker of {run.workers} threads, {run.latency:g} s a charge, no provider limit. "
        f"One order in {run.every} by arrival ({run.sampled:,} orders) was read with "
        f"`GET /api/orders/<id>` as its page reads it: a median {run.first_read_delay_p50:.1f} s after "
        f"accept, then every {run.reread_seconds:g} s while it waited ({run.reads:,} reads). A read "
        "predicts the order paid at the read's time + `eta_seconds`; the actual is the order's `paid_at`. "
        "The error is predicted − actual: positive, the ETA said later than it was. Relative, it is "
        "|error| ÷ the actual wait from the read to paid. The shop's ETA is (position + the orders being "
        "charged, at least 1) ÷ the rate, "
        f"the rate being the orders paid in the last {window} ÷ the time they span: the {window}, or the "
        "time since the first payment in it when the sale is younger (at least 5 s).\n"
    )
    add(
        "| Which reads | Waiting | No ETA | Not paid | Measured | Median \\|error\\| | p90 \\|error\\| "
        "| Median error (signed) | Relative median / p90 | Median actual wait | Median ETA |"
    )
    add("| --- |" + " ---: |" * 10)
    for g in run.groups:
        add(_eta_row(g, bold=g.group == "first"))
    add("")
    o = run.orders
    drained = (
        f"drained {run.drained_at - run.load_end:.0f} s after the load's last order"
        if run.drained_at is not None
        else f"**not drained**: {o.open:,} orders still open when the watch stopped, their reads *not paid*"
    )
    first_paid = (
        f"the first payment came {run.first_paid_at - run.load_start:.1f} s after the first order"
        if run.first_paid_at is not None
        else "nothing was paid"
    )
    span = run.load_end - run.load_start
    arrived = f" ({o.orders / span:.1f}/s)" if span > 0 else ""
    add(
        f"- The run: {o.orders:,} orders{arrived}, {o.paid:,} paid, {o.failed:,} failed; {drained}; "
        f"{first_paid}. The longest line a read saw: {run.peak_position:,} orders ahead."
    )
    first = run.first
    if first is not None and first.reads:
        add(
            f"- {first.no_eta:,} of {first.reads:,} first reads had no ETA (no payment in the last "
            f"{window} yet: the page then gives the place only); "
            f"{sum(g.no_eta for g in run.groups if g.group == 'later'):,} later reads had none."
        )
    add(
        f"- Between an order's consecutive reads with an ETA, it shrank in {run.shrank:,} of "
        f"{run.eta_pairs:,} pairs."
    )
    add(
        f"- When the run began, {run.waiting_before:,} orders of earlier runs waited in line and "
        f"{run.paid_last_minute_before:,} had been paid in the last {window} (both count in the ETA; "
        "0 and 0 is a sale opening on an idle shop)."
        + (f" {run.read_errors:,} reads failed and were retried." if run.read_errors else "")
    )
    add(
        f"- In the first {window} of payments the rate is measured over the time since the first "
        f"payment, not the whole {window}; the *first {window} of payments* row shows how close it is.\n"
    )


def _eta_row(g: EtaAccuracy, *, bold: bool) -> str:
    def cell(text: str) -> str:
        return f"**{text}**" if bold and g.measured else text

    figures = (
        f"{cell(f'{g.median_abs_error:.1f} s')} | {cell(f'{g.p90_abs_error:.1f} s')} "
        f"| {g.median_error:+.1f} s | {g.median_relative_error:.0%} / {g.p90_relative_error:.0%} "
        f"| {g.median_actual:.1f} s | {g.median_predicted:.1f} s"
        if g.measured
        else "— | — | — | — | — | —"
    )
    return f"| {g.label} | {g.reads:,} | {g.no_eta:,} | {g.not_paid:,} | {g.measured:,} | {figures} |"


# --- charts ---------------------------------------------------------------------------------------


def _chart_queue_depth(report_dir: Path, results: StudyResults) -> str | None:
    runs = results.scaling
    if not runs:
        return None
    limits = list(dict.fromkeys(r.provider_limit for r in runs))
    fig, axes = plt.subplots(1, len(limits), figsize=(6.5 * len(limits), 4.2), sharey=True, squeeze=False)
    for ax, limit in zip(axes[0], limits, strict=True):
        for r in (r for r in runs if r.provider_limit == limit):
            samples = _read_csv(report_dir / "data" / f"samples_{r.name}.csv")
            seconds = [float(s["t"]) for s in samples]
            label = f"{r.workers} worker{'s' if r.workers > 1 else ''}"
            (line,) = ax.plot(seconds, [int(s["total"]) for s in samples], label=label)
            # The relay publishes after the accept commits (orders/relay.py): the database's unpaid orders are
            # the backlog itself, SQS's depth may lag them.
            ax.plot(
                seconds,
                [int(s["db_accepted"]) + int(s["db_processing"]) for s in samples],
                color=line.get_color(), linestyle="--", linewidth=1,
            )  # fmt: skip
        ax.plot([], [], color="0.3", linestyle="--", linewidth=1, label="orders waiting (database)")
        ax.axvspan(0, results.parameters.duration, color="0.92", zorder=0, label="load")
        ax.set_title(f"provider limit: {_limit(limit)}")
        ax.set_xlabel("seconds since the first order")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("messages in SQS (solid), orders waiting (dashed)")
    fig.suptitle("Queue depth over time under the flash-sale load, by worker count")
    return _save(fig, report_dir, "queue-depth.png")


def _chart_response_times(report_dir: Path, results: StudyResults) -> str | None:
    unlimited = _unlimited(results)
    if results.sync is None or unlimited is None:
        return None
    series = [("sync checkout", results.sync.checkout), ("async checkout", unlimited.checkout),
              ("GET /api/products", unlimited.trivial_get)]  # fmt: skip
    keys = ["50%", "66%", "75%", "90%", "95%", "99%", "100%"]
    fig, ax = plt.subplots(figsize=(7.5, 4))
    width = 0.27
    for index, (label, stats) in enumerate(series):
        values = [max(stats.percentiles_ms.get(k, 0.0), 0.5) for k in keys]
        bars = ax.bar([i + (index - 1) * width for i in range(len(keys))], values, width, label=label)
        ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], fontsize=6)
    ax.set_xticks(range(len(keys)), [f"p{k[:-1]}" if k != "100%" else "max" for k in keys])
    ax.set_yscale("log")
    ax.set_ylim(top=ax.get_ylim()[1] * 6)
    ax.set_ylabel("response time (ms, log scale)")
    ax.set_title(f"Response-time percentiles ({unlimited.database})")
    ax.legend(loc="upper left", ncol=3, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, report_dir, "response-times.png")


def _chart_processing_rate(report_dir: Path, results: StudyResults) -> str | None:
    if not results.scaling and not results.drain:
        return None
    latency = results.parameters.latency
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    workers = sorted({r.workers for r in results.scaling} | {r.workers for r in results.drain})
    ax.plot(workers, [n / latency for n in workers], "k--", label=f"ideal N / {latency:g} s")
    limits = list(
        dict.fromkeys([r.provider_limit for r in results.drain] + [r.provider_limit for r in results.scaling])
    )
    for limit in limits:
        drain = sorted((r for r in results.drain if r.provider_limit == limit), key=lambda r: r.workers)
        flash = sorted((r for r in results.scaling if r.provider_limit == limit), key=lambda r: r.workers)
        if drain:
            ax.plot([r.workers for r in drain], [max(r.rate, 1e-3) for r in drain], "s-",
                    label=f"drain study, provider limit {_limit(limit)}")  # fmt: skip
        if flash:
            ax.plot([r.workers for r in flash], [max(r.measured_rate, 1e-3) for r in flash], "o:",
                    label=f"flash-sale load, provider limit {_limit(limit)}")  # fmt: skip
    if 1 in limits:
        ax.axhline(1 / latency, color="tab:red", alpha=0.4, lw=1, label="limit-1 ceiling (1 / latency)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(workers, [str(n) for n in workers])
    ax.set_xlabel("workers N (threads)")
    ax.set_ylabel("paid orders per second")
    ax.set_title("Processing rate vs workers, every N of both studies")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return _save(fig, report_dir, "processing-rate.png")


def _save(fig, report_dir: Path, name: str) -> str:
    fig.tight_layout()
    fig.savefig(report_dir / name, dpi=110)
    plt.close(fig)
    return name


def _read_csv(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open() as fh:
        return list(csv.DictReader(fh))


def _limit(limit: int) -> str:
    return "none" if limit == 0 else f"{limit} at a time"


def _pct(part: float, whole: float) -> str:
    return f"{part / whole:.0%}" if whole else "—"


def _ratio(a: float, b: float, digits: int = 1) -> str:
    return f"{a / b:.{digits}f}×" if b else "—"


if __name__ == "__main__":  # python -m loadtests.report <report dir>: render a saved run again
    folder = Path(sys.argv[1])
    print(write(folder, StudyResults.load(folder / "results.json")))
