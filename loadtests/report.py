"""Turn a study's results (results.json and the sample CSVs) into report.md and PNG charts.

Every figure in the tables comes from `results`; the only literal figures are the seed's own,
quoted in SEED and labelled as the seed's wherever they appear.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from capacity.sizing import Sizing

# The seed report's own figures (HW7 report, 20 users, 60 s on AWS ECS), quoted for comparison.
SEED = {
    "sync": {
        "requests": "49",
        "failures": "20 (41%)",
        "median_ms": "30,000",
        "avg_ms": "25,365",
        "p95_ms": "—",
        "p99_ms": "—",
        "throughput": "0.4 RPS",
        "success_rate": "59%",
    },
    "async": {
        "requests": "3,430",
        "failures": "1 (0.03%)",
        "median_ms": "41",
        "avg_ms": "—",
        "p95_ms": "—",
        "p99_ms": "—",
        "throughput": "57 RPS",
        "success_rate": "100%",
    },
    "scaling": {
        1: ("0.33/s", "3,420", "2.9 hours"),
        5: ("1.67/s", "3,277", "32.7 min"),
        20: ("6.67/s", "2,579", "6.4 min"),
        100: ("33.3/s", "616", "18 sec"),
    },
    "target_rate": 60,
}


def write(report_dir: Path, results: dict) -> Path:
    charts = {
        "queue_depth": _chart_queue_depth(report_dir, results),
        "response_times": _chart_response_times(report_dir, results),
        "processing_rate": _chart_processing_rate(report_dir, results),
    }
    text = render(results, charts)
    path = report_dir / "report.md"
    path.write_text(text)
    return path


def render(results: dict, charts: dict[str, str | None]) -> str:
    p, env = results["parameters"], results["environment"]
    out: list[str] = []
    add = out.append
    add(f"# Flash-sale checkout: load study ({'quick' if p['quick'] else 'full'} run, {env['started_at']})\n")
    add("## Environment\n")
    add("| | |\n| --- | --- |")
    add(f"| CPUs | {env['cpu_count']} × {env['cpu_model'] or 'unknown model'}; {env['memory_gb']} GB RAM |")
    add(
        f"| load average (1, 5, 15 min) | at start {', '.join(map(str, env['load_average_at_start']))}; "
        f"at end "
        f"{', '.join(map(str, env.get('load_average_at_end', [])))} (other work shares this machine) |"
    )
    add(f"| payment latency | {p['latency']:g} s per charge (sandbox) |")
    add(
        f"| provider limits studied | {', '.join(_limit(x) for x in p['provider_limits'])} "
        f"(sync run: 1, the seed's stated limit) |"
    )
    add(
        f"| load | {p['users']} Locust users × {p['user_rate']:g} checkouts/s each, "
        f"{p['duration']:g} s per run; "
        f"30 s client timeout |"
    )
    add(f"| drain watched | up to {p['drain_cap']:g} s after the load, then extrapolated |")
    add(f"| Python / platform | {env['python']} / {env['platform']} |")
    add(f"| versions | {', '.join(f'{k} {v}' for k, v in env['versions'].items())} |")
    add(f"| database | {env['database']} |")
    add(f"| web / workers | {env['web']} / {env['worker_pool']} |")
    add(f"| code | git {env['git_commit']}; `{p['command']}`; {env.get('wall_seconds', '?')} s wall time |")
    add("")
    add(
        "Every figure below was measured in this run, except the columns marked *seed*, which quote the "
        "seed report (AWS ECS, 3 s payments) for comparison.\n"
    )

    _sync_vs_async(results, charts, add)
    _scaling(results, charts, add)
    _provider_limits(results, add)
    _capacity(results, add)
    _memory(results, add)
    _sizing(results, add)
    add("## Data files\n")
    add(
        "`data/results.json` (everything above), `data/locust_<run>_stats.csv` (Locust's own statistics), "
        "`data/samples_<run>.csv` (one row a second: SQS visible / not visible / delayed, order counts by "
        "status, worker memory), `data/orders_<run>.csv` (every order: created, claimed, paid), "
        "`data/capacity.csv`, `data/memory.csv`, `logs/` (each process's log).\n"
    )
    return "\n".join(out) + "\n"


def _sync_vs_async(results: dict, charts: dict, add) -> None:
    sva = results.get("sync_vs_async", {})
    sync, asyn = sva.get("sync"), sva.get("async")
    if not sync or not asyn:
        return
    p = results["parameters"]
    add("## 1. Sync vs async at the seed's load\n")
    rows = [
        ("Requests", "requests", lambda r: f"{r['requests']:,}"),
        ("Failures", "failures", lambda r: f"{r['failures']:,} ({_pct(r['failures'], r['requests'])})"),
        ("Median response", "median_ms", lambda r: f"{r['median_ms']:,.0f} ms"),
        ("Average response", "avg_ms", lambda r: f"{r['avg_ms']:,.0f} ms"),
        ("p95 response", "p95_ms", lambda r: f"{r['p95_ms']:,.0f} ms"),
        ("p99 response", "p99_ms", lambda r: f"{r['p99_ms']:,.0f} ms"),
        ("Throughput (successful checkouts/s)", "throughput", lambda r: f"{r['throughput']:.1f}/s"),
        ("Success rate", "success_rate", lambda r: f"{r['success_rate']:.0%}"),
    ]
    add("| Metric | Sync | Async | Sync (*seed*) | Async (*seed*) |")
    add("| --- | ---: | ---: | ---: | ---: |")
    for label, key, fmt in rows:
        add(f"| {label} | {fmt(sync)} | {fmt(asyn)} | {SEED['sync'][key]} | {SEED['async'][key]} |")
    add("")
    ratio = (asyn["requests"] - asyn["failures"]) / max(1, sync["requests"] - sync["failures"])
    add(
        f"Sync: {p['users']} users for {p['duration']:g} s against a provider taking one {p['latency']:g} s "
        f"charge at a time, no workers (the pre-queue shop). The database holds {sync['db_orders']:,} sync "
        f"orders: {sync['db_paid']:,} paid, {sync['db_processing']:,} still waiting for the provider "
        f"when the "
        f"load stopped (abandoned with their requests) and {sync['db_accepted']:,} handed to the background "
        f"after a 504; the provider "
        f"made {sync['provider']['charges']:,} charges, at most {sync['provider']['max_in_flight']} at once, "
        f"with up to {sync['provider']['max_waiting']} requests queued behind them."
    )
    add(
        f"Async: the worker-scaling run `{asyn['from_run']}` ({asyn['workers']} workers, provider limit "
        f"{_limit(asyn['provider_limit'])}), same users and duration. "
        f"Async accepted **{ratio:.0f}×** as many "
        f"orders as sync completed; its median answer was "
        f"{sync['median_ms'] / max(asyn['median_ms'], 1):,.0f}× faster.\n"
    )
    if charts.get("response_times"):
        add(f"![Response-time percentiles, sync vs async]({charts['response_times']})\n")


def _scaling(results: dict, charts: dict, add) -> None:
    runs = results.get("scaling", [])
    if not runs:
        return
    p = results["parameters"]
    add("## 2. Worker scaling\n")
    add(
        "Each run: a fresh worker process (`celery worker --pool=threads --concurrency=N`), "
        f"then the async load "
        f"({p['users']} users, {p['duration']:g} s), then the queue watched for up to {p['drain_cap']:g} s. "
        "Queue depth is SQS's `ApproximateNumberOfMessages` + `…NotVisible` (+ delayed), sampled every "
        "second. The processing rate is paid orders (from the database) per second from the first claim "
        "to the last payment, or to the end of the run if the queue had not drained. Ideal = N / latency, "
        "or the provider's limit / latency when that is lower. A drain time is measured when the queue "
        "emptied within the watch, else extrapolated: watched time + orders left ÷ measured rate.\n"
    )
    for limit in dict.fromkeys(r["provider_limit"] for r in runs):
        subset = [r for r in runs if r["provider_limit"] == limit]
        add(f"### Provider limit: {_limit(limit)}\n")
        add(
            "| Workers | Requests (fail) | Median | Orders in | In rate | Peak depth (visible) "
            "| Measured rate "
            "| Ideal | Efficiency | Drain time | Keeps up? | Paid / failed / in flight |"
        )
        add("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: | ---: |")
        for r in subset:
            keeps_up = "yes" if r["measured_rate"] >= 0.95 * r["incoming_rate"] else "no"
            add(
                f"| {r['workers']} | {r['locust']['requests']:,} ({r['locust']['failures']}) "
                f"| {r['locust']['median_ms']:.0f} ms | {r['db_orders']:,} | {r['incoming_rate']:.1f}/s "
                f"| {r['peak_depth']:,} ({r['peak_visible']:,}) | {r['measured_rate']:.2f}/s "
                f"| {r['ideal_rate']:.2f}/s | {r['efficiency']:.0%} | {r['drain_label']} | {keeps_up} "
                f"| {r['db_paid']:,} / {r['db_failed']:,} / {r['in_flight']:,} |"
            )
        add("")
        checks = []
        for r in subset:
            prov = r["provider"]
            checks.append(
                f"`{r['name']}`: 202s {r['accepted_202']:,} vs orders in the database {r['db_orders']:,}; "
                f"provider charges {prov['charges']:,} vs paid {r['db_paid']:,} (a charge still "
                f"running when the worker was stopped is not yet paid); keys charged twice "
                f"{prov['keys_charged_more_than_once']}; backlog at the end of the load "
                f"{r['backlog_at_load_end']:,}"
            )
        add(
            "Cross-checks (Locust does not count requests still open when it stops, so the database may "
            "hold a few more orders than 202s): " + "; ".join(checks) + ".\n"
        )
    _cpu(runs, add)
    add(
        "The seed's table for comparison (*seed*: workers, processing rate, peak queue depth, drain time): "
        + "; ".join(f"{n}: {v[0]}, {v[1]}, {v[2]}" for n, v in SEED["scaling"].items())
        + ". The seed's rates are N × 0.33/s by formula, not measured.\n"
    )
    if charts.get("queue_depth"):
        add(f"![Queue depth over time per worker count]({charts['queue_depth']})\n")
    if charts.get("processing_rate"):
        add(f"![Processing rate vs workers, against the ideal]({charts['processing_rate']})\n")


def _cpu(runs: list[dict], add) -> None:
    """Add where the CPU went during each run, in cores (CPU seconds ÷ wall seconds)."""
    runs = [r for r in runs if r.get("cpu_seconds", {}).get("wall")]
    if not runs:
        return
    add(
        "Where the CPU went during each run (cores busy on average over load and drain; *other* is "
        "everything else on the machine: Locust, this runner and any other work):\n"
    )
    add("| Run | Seconds | Machine busy | SQS emulator | Web | Worker | Sandbox | Other |")
    add("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in runs:
        cpu = r["cpu_seconds"]
        wall = cpu["wall"]
        ours = sum(cpu[k] for k in ("sqs", "web", "worker", "sandbox"))
        cells = " | ".join(f"{cpu[k] / wall:.2f}" for k in ("machine", "sqs", "web", "worker", "sandbox"))
        add(f"| `{r['name']}` | {wall:.0f} | {cells} | {max(0.0, cpu['machine'] - ours) / wall:.2f} |")
    add("")
    names = {
        "sqs": "the SQS emulator",
        "web": "the web server",
        "worker": "the worker",
        "sandbox": "the sandbox",
    }
    share = {k: sum(r["cpu_seconds"][k] / r["cpu_seconds"]["wall"] for r in runs) / len(runs) for k in names}
    busiest = max(share, key=share.get)
    machine = sum(r["cpu_seconds"]["machine"] / r["cpu_seconds"]["wall"] for r in runs) / len(runs)
    line = (
        f"On average the busiest process was {names[busiest]} at {share[busiest]:.2f} cores, while the "
        f"whole machine was busy {machine:.2f} of its {os.cpu_count()} cores"
    )
    if share[busiest] >= 0.6 and busiest != "web":  # gunicorn runs 2 processes; the others are one each
        line += (
            f". One Python process can use little more than one core, so {names[busiest]} is the likeliest "
            "bottleneck here: it, more than the CPU count, sets the accept latency and the workers' pace"
        )
    add(line + ".\n")


def _provider_limits(results: dict, add) -> None:
    runs = results.get("scaling", [])
    limited = [r for r in runs if r["provider_limit"] == 1]
    free = [r for r in runs if r["provider_limit"] == 0]
    if not limited or not free:
        return
    latency = results["parameters"]["latency"]
    lo, hi = min(free, key=lambda r: r["workers"]), max(free, key=lambda r: r["workers"])
    rates = [r["measured_rate"] for r in limited]
    waiting = max(r["provider"]["max_waiting"] or 0 for r in limited)
    add("## 3. The provider limit, both readings\n")
    add(
        f"With the provider taking one charge at a time (the seed's stated limit), "
        f"{min(r['workers'] for r in limited)} to {max(r['workers'] for r in limited)} workers all paid "
        f"between {min(rates):.2f} and {max(rates):.2f} orders/s, the provider's own ceiling of "
        f"1 / {latency:g} s = {1 / latency:.2f}/s, because extra workers "
        f"only queue at the provider (up to {waiting} waiting at once). Without a limit (the behaviour the "
        f"seed measured) the rate grew with the workers, from {lo['measured_rate']:.2f}/s at "
        f"{lo['workers']} to {hi['measured_rate']:.2f}/s at {hi['workers']} "
        f"({hi['efficiency']:.0%} of the ideal), so the seed's "
        "linear scaling table only holds if each worker effectively has its own provider slot.\n"
    )


def _capacity(results: dict, add) -> None:
    cap, ceiling = results.get("capacity") or {}, results.get("sqs_send_ceiling")
    if not cap.get("steps"):
        return
    add("## 4. Capacity: async accept rate on this machine\n")
    add(
        f"Async checkouts at rising target rates, no workers running (only the accept path: web, database, "
        f"SQS); a step passes with p99 below {cap['p99_limit_ms']:g} ms and no failures.\n"
    )
    add("| Target | Users | Accepted | Accept rate | Median | p95 | p99 | Failures | Passes |")
    add("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: |")
    for s in cap["steps"]:
        add(
            f"| {s['target']:g}/s | {s['users']} | {s['accepted']:,} | {s['accept_rate']:.1f}/s "
            f"| {s['median_ms']:.0f} ms | {s['p95_ms']:.0f} ms | {s['p99_ms']:.0f} ms | {s['failures']} "
            f"| {'yes' if s['ok'] else 'no'} |"
        )
    add("")
    best = cap.get("best")
    if best:
        line = (
            f"Highest accept rate with p99 < {cap['p99_limit_ms']:g} ms: "
            f"**{best['accept_rate']:.1f} orders/s** "
            f"(p99 {best['p99_ms']:.0f} ms)"
        )
    else:
        line = f"No step kept p99 below {cap['p99_limit_ms']:g} ms"
    if ceiling:
        line += (
            f". The SQS emulator alone took **{ceiling['rate']:.0f} SendMessage/s** "
            f"({ceiling['threads']} boto3 threads, {ceiling['seconds']:g} s, measured in this run)"
        )
        if best:
            line += (
                f", so the shop reaches {best['accept_rate'] / ceiling['rate']:.0%} of its broker's ceiling"
            )
    add(line + ". Both share this machine's CPUs with Locust itself.\n")


def _memory(results: dict, add) -> None:
    runs = results.get("scaling", [])
    rows = []
    for workers in sorted({r["workers"] for r in runs}):
        candidates = [r for r in runs if r["workers"] == workers]
        r = next((c for c in candidates if c["provider_limit"] == 0), candidates[0])
        rows.append(
            (
                "threads",
                workers,
                r["worker_idle_rss_mb"],
                r["worker_peak_rss_mb"],
                "—",
                1,
                f"scaling run `{r['name']}`, under load",
            )
        )
    for m in results.get("memory", []):
        rows.append(
            (
                m["pool"],
                m["concurrency"],
                m["idle_rss_mb"],
                m["peak_rss_mb"],
                f"{m['peak_pss_mb']:.0f} MB",
                m["processes"],
                f"memory run, {m['orders']} orders",
            )
        )
    if not rows:
        return
    add("## 5. Worker memory\n")
    add(
        "Resident memory of the worker (all its processes: a prefork pool has one per slot). PSS shares "
        "copy-on-write pages fairly between the processes, so it is the figure to compare with a "
        "container's limit (the seed ran 100 workers in a 512 MB task).\n"
    )
    add("| Pool | Concurrency | Idle RSS | Peak RSS | Peak PSS | Processes | Measured in |")
    add("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for pool, n, idle, peak, pss, procs, source in rows:
        add(f"| {pool} | {n} | {idle:.0f} MB | {peak:.0f} MB | {pss} | {procs} | {source} |")
    add("")


def _sizing(results: dict, add) -> None:
    runs = [r for r in results.get("scaling", []) if r["provider_limit"] == 0]
    latency = results["parameters"]["latency"]
    add("## 6. Sizing: workers = rate × latency\n")
    if runs:
        add(
            "The seed's formula predicts N / latency orders/s from N workers. Checked against this run "
            "(no provider limit):\n"
        )
        add("| Workers | Formula N / latency | Measured | Measured ÷ formula |")
        add("| ---: | ---: | ---: | ---: |")
        for r in runs:
            add(
                f"| {r['workers']} | {r['ideal_rate']:.2f}/s | {r['measured_rate']:.2f}/s "
                f"| {r['efficiency']:.0%} |"
            )
        add("")
    largest = max(runs, key=lambda r: r["workers"]) if runs else None
    efficiency = largest["efficiency"] if largest and largest["efficiency"] > 0 else 1.0
    incoming = [r["incoming_rate"] for r in results.get("scaling", []) if r["incoming_rate"]]
    targets = [("the seed's flash sale", SEED["target_rate"])]
    if incoming:
        targets.append(("this run's measured load", sum(incoming) / len(incoming)))
    add("| Target | Formula: rate × latency | With measured efficiency | With provider limit 1 |")
    add("| --- | ---: | ---: | --- |")
    for label, rate in targets:
        sizing = Sizing(rate, latency, 0, efficiency)
        limited = Sizing(rate, latency, 1, efficiency)
        measured_at = f" at {largest['workers']} workers" if largest else ""
        add(
            f"| {label}: {rate:.1f}/s | {sizing.ideal_workers} | {sizing.workers} "
            f"(efficiency {efficiency:.0%}{measured_at}) "
            f"| unreachable: the provider pays at most {limited.provider_ceiling:.2f}/s |"
        )
    add("")
    add(
        "`python manage.py recommend_workers --rate 60 --latency "
        f"{latency:g} --provider-limit 0 --report <this folder>` prints the same recommendation.\n"
    )


# --- charts ---------------------------------------------------------------------------------------


def _chart_queue_depth(report_dir: Path, results: dict) -> str | None:
    runs = results.get("scaling", [])
    if not runs:
        return None
    limits = list(dict.fromkeys(r["provider_limit"] for r in runs))
    fig, axes = plt.subplots(1, len(limits), figsize=(6.5 * len(limits), 4.2), sharey=True, squeeze=False)
    duration = results["parameters"]["duration"]
    for ax, limit in zip(axes[0], limits, strict=True):
        for r in (r for r in runs if r["provider_limit"] == limit):
            samples = _read_csv(report_dir / "data" / f"samples_{r['name']}.csv")
            seconds = [float(s["t"]) for s in samples]
            (line,) = ax.plot(
                seconds,
                [int(s["total"]) for s in samples],
                label=f"{r['workers']} worker{'s' if r['workers'] > 1 else ''}",
            )
            # The web publishes after answering (orders/outbox.py), so SQS can lag the orders
            # waiting: the database's count of unpaid orders is the backlog itself.
            ax.plot(
                seconds,
                [int(s["db_accepted"]) + int(s["db_processing"]) for s in samples],
                color=line.get_color(),
                linestyle="--",
                linewidth=1,
            )
        ax.plot([], [], color="0.3", linestyle="--", linewidth=1, label="orders waiting (database)")
        ax.axvspan(0, duration, color="0.92", zorder=0, label="load")
        ax.set_title(f"provider limit: {_limit(limit)}")
        ax.set_xlabel("seconds since the first order")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("messages in SQS (solid), orders waiting (dashed)")
    fig.suptitle("Queue depth over time, by worker count")
    return _save(fig, report_dir, "queue-depth.png")


def _chart_response_times(report_dir: Path, results: dict) -> str | None:
    sva = results.get("sync_vs_async", {})
    if not sva.get("sync") or not sva.get("async"):
        return None
    keys = ["50%", "66%", "75%", "90%", "95%", "99%", "100%"]
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.38
    for offset, (label, data) in zip(
        (-width / 2, width / 2), (("sync", sva["sync"]), ("async", sva["async"])), strict=True
    ):
        values = [max(data["percentiles_ms"].get(k, 0), 0.5) for k in keys]
        bars = ax.bar([i + offset for i in range(len(keys))], values, width, label=label)
        ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], fontsize=7)
    ax.set_xticks(range(len(keys)), [f"p{k[:-1]}" if k != "100%" else "max" for k in keys])
    ax.set_yscale("log")
    ax.set_ylim(top=ax.get_ylim()[1] * 6)  # room for the legend above the tallest bar
    ax.set_ylabel("response time (ms, log scale)")
    ax.set_title("Checkout response-time percentiles, sync vs async")
    ax.legend(loc="upper left", ncol=2)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, report_dir, "response-times.png")


def _chart_processing_rate(report_dir: Path, results: dict) -> str | None:
    runs = results.get("scaling", [])
    if not runs:
        return None
    latency = results["parameters"]["latency"]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    workers = sorted({r["workers"] for r in runs})
    ax.plot(workers, [n / latency for n in workers], "k--", label=f"ideal N / {latency:g} s")
    for limit in dict.fromkeys(r["provider_limit"] for r in runs):
        subset = sorted((r for r in runs if r["provider_limit"] == limit), key=lambda r: r["workers"])
        ax.plot(
            [r["workers"] for r in subset],
            [max(r["measured_rate"], 1e-3) for r in subset],
            "o-",
            label=f"measured, provider limit {_limit(limit)}",
        )
    if 1 in {r["provider_limit"] for r in runs}:
        ax.axhline(1 / latency, color="tab:red", alpha=0.4, lw=1, label="limit-1 ceiling (1 / latency)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("workers (threads)")
    ax.set_ylabel("paid orders per second")
    ax.set_title("Processing rate vs workers")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
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
