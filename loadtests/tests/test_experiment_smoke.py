"""The experiment runner end to end with a tiny load: its report and data files, and their consistency.

The runner starts its own stack (SQS server, sandbox, gunicorn, workers) as `make experiment` does,
on PostgreSQL (a database of its own on DATABASE_URL's server); the checks
recompute the report's figures from the raw files it wrote (Locust's CSVs, every order's timings,
the queue samples, wrk's output) and read results.json back into the typed results the report
renders from. The saturation phase needs wrk: the run installs it with apt-get when it is missing
(as root, as .ci/run installs Chromium), so nothing here is skipped.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from io import StringIO
from itertools import pairwise
from pathlib import Path

import pytest
from django.core.management import call_command

from devstack.stack import BASE_DIR
from loadtests.bench import drop_database
from sizing.measure import percentile
from sizing.results import StudyResults

# The tiny study takes about 4 minutes on a busy 2-core machine (4.5 with wrk to install).
pytestmark = [pytest.mark.lab, pytest.mark.timeout(480)]

TINY = [
    "--users", "3", "--duration", "3", "--latency", "0.2", "--workers", "2", "--provider-limits", "1,0",
    "--drain-cap", "3", "--drain-workers", "1,3", "--drain-waves", "3", "--drain-limited-waves", "2",
    "--drain-threads", "2", "--accept-seconds", "3",
    "--ceiling-depths", "0,200", "--ceiling-seconds", "0.5", "--ceiling-threads", "2",
    "--capacity-rates", "10", "--capacity-seconds", "2", "--prefork", "2", "--saturation-seconds", "1",
    "--saturation-rounds", "2",
    "--eta-workers", "2", "--eta-duration", "3", "--eta-samples", "10", "--eta-reread", "0.5",
]  # fmt: skip


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Iterator[Path]:
    """Run the study once for every test in this module; return its report folder."""
    out = tmp_path_factory.mktemp("reports")
    url = os.environ["DATABASE_URL"]  # config/settings/local.py sets its default
    # Named after the suite's database (flashsale_labsmoke_<pid> in CI), so runs side by side keep apart.
    name = f"{url.rsplit('/', 1)[-1]}_labsmoke_{os.getpid()}"
    database = ["--database-url", url]
    try:
        result = subprocess.run(
            [sys.executable, "-m", "loadtests.experiment", *TINY, "--out", str(out), *database,
             "--database-name", name],
            cwd=BASE_DIR, capture_output=True, text=True, timeout=460,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        (folder,) = [p for p in out.iterdir() if p.is_dir()]
        yield folder
    finally:
        drop_database(url, name)


def results(report: Path) -> dict:
    return json.loads((report / "data" / "results.json").read_text())


def read_csv(path: Path) -> list[dict]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def locust_row(report: Path, run: str, name: str) -> dict:
    return next(r for r in read_csv(report / "data" / f"locust_{run}_stats.csv") if r["Name"] == name)


def test_the_report_opens_with_the_environment_and_the_database_and_has_every_section_and_chart(report):
    text = (report / "report.md").read_text()
    data = results(report)

    assert text.startswith("# Flash-sale checkout: load study")
    environment = text.split("## Environment", 1)[1].split("## 1.", 1)[0]
    assert f"| database | **{data['environment']['database']}**" in environment
    assert data["environment"]["database"].startswith("PostgreSQL")
    assert f"| CPUs | {os.cpu_count()} ×" in environment
    assert "| payment latency | 0.2 s per charge" in environment
    assert [p["name"] for p in data["phases"]] == [
        "stack", "sqs ceilings", "eta accuracy", "sync checkout", "sync with the checkout queue",
        "async accept", "sold out", "drain study",
        "flash-sale scaling", "capacity", "saturation", "memory", "report",
    ]  # fmt: skip
    for heading in (
        "## 1. Sync vs async", "## 2. Async accept latency", "### The flash sale, path by path",
        "## 3. The SQS server's own ceiling", "## 4. Worker scaling as a drain",
        "## 5. Worker scaling under the flash-sale load", "## 6. The provider limited", "## 7. Capacity",
        "## 8. Saturation under wrk", "## 9. Worker memory", "## 10. Sizing",
    ):  # fmt: skip
        assert heading in text
    assert "| 3 (3×1) |" in text  # the drain's N = 3 ran as three processes of one thread (--drain-threads 2)
    for chart in ("queue-depth.png", "response-times.png", "processing-rate.png"):
        assert f"]({chart})" in text
        assert (report / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_results_json_is_schema_2_and_reads_back_into_the_typed_results_the_report_renders(report):
    loaded = StudyResults.load(report / "results.json")

    assert results(report)["schema"] == loaded.schema == 2
    assert [(r.workers, r.provider_limit) for r in loaded.drain] == [(1, 1), (3, 1), (1, 0), (3, 0)]
    assert [(r.workers, r.provider_limit) for r in loaded.scaling] == [(2, 1), (2, 0)]
    assert loaded.scaling[0].drain.kind in ("measured", "extrapolated")


def test_every_scaling_run_accounts_for_each_order_it_accepted(report):
    for run in results(report)["scaling"]:
        orders = read_csv(report / "data" / f"orders_{run['name']}.csv")
        statuses = [o["status"] for o in orders]
        counts = run["orders"]
        open_orders = counts["accepted"] + counts["processing"]

        assert counts["paid"] + counts["failed"] + open_orders == counts["orders"] == len(orders) > 0
        assert statuses.count("paid") == counts["paid"]
        assert open_orders == statuses.count("accepted") + statuses.count("processing")
        # Locust misses only the requests still open when it stopped, at most one per user.
        assert 0 <= counts["orders"] - run["accepted_202"] <= 3
        assert run["accepted_202"] == int(
            locust_row(report, run["name"], "POST /api/orders/async")["Request Count"]
        )
        assert run["provider"]["charges"] >= counts["paid"]
        assert run["provider"]["keys_charged_more_than_once"] == 0
        cpu = run["cpu"]
        assert cpu["wall"] > 0 and cpu["machine"] > 0
        assert (
            cpu["processes"]["worker"] > 0 and cpu["processes"]["web"] > 0 and cpu["processes"]["locust"] > 0
        )
        assert all(seconds >= 0 for seconds in cpu["processes"].values())


def test_the_processing_rate_efficiency_and_overhead_follow_from_the_order_timings(report):
    for run in results(report)["scaling"]:
        orders = read_csv(report / "data" / f"orders_{run['name']}.csv")
        paid = [o for o in orders if o["status"] == "paid"]
        first_claim = min(float(o["claimed_at"]) for o in orders if o["claimed_at"])
        end = run["drained_at"] if run["drained_at"] is not None else run["stopped_at"]
        slots = min(run["workers"], run["provider_limit"] or run["workers"])

        assert run["measured_rate"] == pytest.approx(len(paid) / (end - first_claim))
        assert run["ideal_rate"] == pytest.approx(slots / run["latency"])
        assert run["efficiency"] == pytest.approx(run["measured_rate"] / run["ideal_rate"])
        assert run["overhead_ms"] == pytest.approx(
            ((end - first_claim) * slots / len(paid) - run["latency"]) * 1000
        )


def test_drain_figures_agree_with_the_measured_rate(report):
    for run in results(report)["scaling"]:
        drain = run["drain"]
        open_orders = run["orders"]["accepted"] + run["orders"]["processing"]
        if drain["kind"] == "measured":
            assert drain["remaining_at_stop"] == 0 == open_orders
            assert 0 <= drain["seconds"] <= drain["observed_seconds"] + 1
        else:
            assert drain["remaining_at_stop"] == open_orders > 0
            assert drain["seconds"] == pytest.approx(
                drain["observed_seconds"] + drain["remaining_at_stop"] / run["measured_rate"]
            )


def test_queue_depth_was_sampled_every_second_and_the_peak_is_the_samples_maximum(report):
    for run in results(report)["scaling"]:
        samples = read_csv(report / "data" / f"samples_{run['name']}.csv")
        seconds = [float(s["t"]) for s in samples]

        assert len(samples) >= 3
        assert all(0.5 <= b - a <= 5 for a, b in pairwise(seconds))  # a busy machine may stall one
        assert run["peak_depth"] == max(int(s["total"]) for s in samples)
        assert all(
            int(s["total"]) == int(s["visible"]) + int(s["not_visible"]) + int(s["delayed"]) for s in samples
        )


def test_the_drain_study_paid_every_queued_order_once_at_the_rate_its_order_timings_give(report):
    parameters = results(report)["parameters"]
    for run in results(report)["drain"]:
        waves = parameters["drain_limited_waves"] if run["provider_limit"] else parameters["drain_waves"]
        orders = read_csv(report / "data" / f"orders_{run['name']}.csv")
        slots = min(run["workers"], run["provider_limit"] or run["workers"])
        first_claim = min(float(o["claimed_at"]) for o in orders)
        last_paid = max(float(o["paid_at"]) for o in orders)

        assert run["orders"] == len(orders) == slots * waves == run["paid"]
        assert {o["status"] for o in orders} == {"paid"}
        assert run["charged_twice"] == run["not_charged"] == run["task_errors"] == 0
        assert run["seconds"] == pytest.approx(last_paid - first_claim, abs=0.01)
        assert run["rate"] == pytest.approx(len(orders) / (last_paid - first_claim), rel=0.01)
        assert run["ideal_rate"] == pytest.approx(slots / run["latency"])
        assert run["efficiency"] == pytest.approx(run["rate"] / run["ideal_rate"], abs=0.002)
        workers_cpu = [v for k, v in run["cpu_seconds"].items() if k.startswith("worker")]
        assert sum(workers_cpu) > 0 and run["cpu_seconds"]["wall"] > 0
        # N = 3 with at most 2 threads a process: three processes of one thread, each measured.
        assert run["processes"] == (3 if run["workers"] == 3 else 1)
        assert len(workers_cpu) == run["processes"]


def test_accept_latency_and_the_trivial_get_come_from_the_same_locust_run(report):
    runs = results(report)["accept"]

    assert [a["product"] for a in runs] == ["unlimited", "hot", "sold-out"]
    for accept, run in zip(runs, ("accept", "accept-hot", "soldout"), strict=True):
        checkout = locust_row(report, run, "POST /api/orders/async")
        probe = locust_row(report, run, "GET /api/products [probe]")

        assert accept["database"] == results(report)["environment"]["database"]
        assert accept["checkout"]["requests"] == int(checkout["Request Count"]) > 0
        assert accept["checkout"]["failures"] == int(checkout["Failure Count"]) == 0
        assert accept["checkout"]["median_ms"] == float(checkout["Median Response Time"])
        assert accept["trivial_get"]["requests"] == int(probe["Request Count"]) > 0
        assert accept["trivial_get"]["p99_ms"] == float(probe["99%"])
        assert 0 <= accept["orders"] - accept["checkout"]["requests"] <= accept["users"]
        assert accept["cpu"]["processes"]["locust"] > 0
    assert runs[0]["stock"] is None and runs[0]["refusals"] is None


def test_the_hot_run_buys_one_unit_of_the_limited_product_an_order_and_never_runs_out(report):
    hot = next(a for a in results(report)["accept"] if a["product"] == "hot")
    stock = hot["stock"]
    target = hot["users"] * results(report)["parameters"]["user_rate"] * hot["duration"]

    assert stock["sku"] == "flash-sneakers"
    assert stock["offered"] >= target * 1.5  # more on sale than the run could buy
    assert stock["taken"] == hot["orders"] > 0  # one unit an order
    assert stock["reserved"] + stock["sold"] < stock["stock"]  # units left: never a 409
    assert stock["sold_out_after"] is None
    assert hot["refusals"] is None


def test_the_sold_out_run_answers_202_until_the_last_unit_then_409_and_never_oversells(report):
    data = results(report)
    sold_out = next(a for a in data["accept"] if a["product"] == "sold-out")
    stock, refusals = sold_out["stock"], sold_out["refusals"]
    row = locust_row(report, "soldout", "POST /api/orders/async [sold out]")

    # A third of what the crowd buys in the run (at the hot run's measured rate, at most the target).
    target = sold_out["users"] * data["parameters"]["user_rate"] * sold_out["duration"]
    assert 1 <= stock["offered"] <= max(1, round(target / 3))
    assert stock["taken"] == stock["offered"] == sold_out["orders"]  # every unit sold, one an order
    assert sold_out["checkout"]["requests"] <= sold_out["orders"]
    assert stock["reserved"] + stock["sold"] == stock["stock"]  # sold out, not oversold
    assert 0 <= stock["sold_out_after"] < sold_out["duration"]
    assert refusals["name"] == "POST /api/orders/async [sold out]"
    assert refusals["requests"] == int(row["Request Count"]) > 0
    assert refusals["failures"] == int(row["Failure Count"]) == 0
    assert refusals["p99_ms"] == float(row["99%"])
    text = (report / "report.md").read_text()
    assert "| hot product selling out → 409 out_of_stock |" in text
    assert f"{stock['offered']:,} units on sale" in text and "no oversell" in text
    assert "OVERSOLD" not in text


def test_saturation_ran_wrk_on_the_get_and_both_checkouts_in_rounds_and_every_answer_was_good(report):
    runs = results(report)["saturation"]

    # Two rounds, the second in reverse order, so that a drifting machine shifts every target alike.
    assert [(r["round"], r["name"], r["method"], r["product"]) for r in runs] == [
        (1, "get", "GET", ""), (1, "unlimited", "POST", "unlimited"), (1, "hot", "POST", "hot"),
        (2, "hot", "POST", "hot"), (2, "unlimited", "POST", "unlimited"), (2, "get", "GET", ""),
    ]  # fmt: skip
    for run in runs:
        wrk = run["wrk"]
        text = (report / "data" / f"wrk_{run['name']}_r{run['round']}.txt").read_text()

        assert run["connections"] == 16 and run["threads"] == 2
        assert wrk["requests"] > 0 and 0.5 < wrk["seconds"] < 5
        assert f"{wrk['requests']} requests in" in text  # wrk's own text says the same
        assert wrk["non_2xx"] == wrk["socket_errors"] == 0
        assert "Non-2xx or 3xx responses" not in text
        assert 0 < wrk["p50_ms"] <= wrk["p90_ms"] <= wrk["p99_ms"] <= wrk["max_ms"]
        assert run["cpu"]["processes"]["wrk"] > 0 and run["cpu"]["processes"]["web"] > 0
        assert "relay" in run["cpu"]["processes"]  # metered beside the web: it publishes the jobs
        assert 0 <= run["cpu"]["steal"] <= run["cpu"]["machine"]
        if run["product"]:
            # Every 202 is an order; requests still open when wrk stopped may add one a connection.
            assert wrk["requests"] <= run["orders"] <= wrk["requests"] + run["connections"]
            assert run["unpublished_after"] <= run["unpublished_at_end"] <= run["orders"]
    hot = (report / "data" / "wrk_hot_r1.lua").read_text()
    assert re.search(r'"items":\[\{"sku":"flash-sneakers","quantity":1\}\]', hot)
    text = (report / "report.md").read_text()
    assert "Peak checkout ÷ GET" in text and "FAILED" not in text
    # Each target's rate is its requests over its seconds, both rounds added up.
    rate = {
        name: sum(r["wrk"]["requests"] for r in runs if r["name"] == name)
        / sum(r["wrk"]["seconds"] for r in runs if r["name"] == name)
        for name in ("get", "unlimited", "hot")
    }
    peak = max(rate["unlimited"], rate["hot"])
    assert f"Peak checkout ÷ GET: **{peak / rate['get']:.2f}×**" in text
    assert "The whole stack's CPU per answer" in text


def test_the_eta_run_read_its_samples_while_they_waited_and_its_errors_follow_from_paid_at(report):
    run = results(report)["eta"]
    orders = {o["id"]: o for o in read_csv(report / "data" / f"orders_{run['name']}.csv")}
    reads = read_csv(report / "data" / f"eta_reads_{run['name']}.csv")
    first = [r for r in reads if r["nth"] == "0"]

    assert run["orders"]["paid"] == run["orders"]["orders"] == len(orders) > 0  # drained: all paid
    assert run["drained_at"] is not None and run["waiting_before"] == 0
    # One order in `every` by arrival, each with one first read.
    assert run["every"] == max(1, round(3 * 3.0 * 3 / 10))
    assert len(first) == run["sampled"] == len({r["order"] for r in reads}) >= len(orders) // run["every"] - 2
    assert run["reads"] == len(reads) and run["read_errors"] == 0
    errors = []
    for r in reads:
        paid_at = float(orders[r["order"]]["paid_at"])
        assert float(r["paid_after"]) == pytest.approx(
            paid_at - (float(r["t"]) + run["load_start"]), abs=0.01
        )
        if r["eta_seconds"]:
            assert float(r["error"]) == pytest.approx(
                float(r["eta_seconds"]) - float(r["paid_after"]), abs=0.01
            )
            if r["nth"] == "0":
                errors.append(abs(float(r["error"])))
    group = next(g for g in run["groups"] if g["group"] == "first")
    assert group["measured"] == len(errors)
    assert group["reads"] == group["measured"] + group["no_eta"] + group["not_paid"]
    assert group["median_abs_error"] == pytest.approx(percentile(errors, 50), abs=0.01)
    text = (report / "report.md").read_text()
    assert f"One order in {run['every']} by arrival ({run['sampled']:,} orders)" in text


def test_sync_figures_come_from_locusts_own_statistics(report):
    sync = results(report)["sync"]
    row = locust_row(report, "sync", "POST /api/orders/sync")

    assert sync["checkout"]["requests"] == int(row["Request Count"]) > 0
    assert sync["orders"]["paid"] <= sync["orders"]["orders"]
    assert sync["provider"]["max_in_flight"] <= 1


def test_the_sync_queue_figures_come_from_locust_and_the_orders_and_no_request_waited_out_a_timeout(report):
    queued = results(report)["sync_queue"]
    loaded = StudyResults.load(report / "results.json").sync_queue
    final = locust_row(report, "sync-queue", "POST /api/orders/sync")
    orders = read_csv(report / "data" / "orders_sync-queue.csv")
    paid = [o for o in orders if o["status"] == "paid"]

    assert queued["checkout"]["requests"] == int(final["Request Count"]) > 0
    assert queued["checkout"]["failures"] == int(final["Failure Count"]) == 0  # every final answer: paid
    assert queued["waits"]["requests"] == queued["checkout"]["requests"]  # one whole wait a checkout
    assert queued["past_timeout"] == 0
    assert queued["paid"] == len(paid) == queued["orders"]["paid"] > 0
    assert queued["paid_seconds"] == pytest.approx(
        max(float(o["paid_at"]) for o in paid) - min(float(o["claimed_at"]) for o in paid), abs=0.01
    )
    assert queued["provider"]["max_in_flight"] <= 1 and queued["provider"]["keys_charged_more_than_once"] == 0
    assert loaded is not None and loaded.ideal == pytest.approx(1 / 0.2)
    assert loaded.efficiency == pytest.approx(loaded.goodput / loaded.ideal)
    text = (report / "report.md").read_text()
    assert "| Metric | Sync | Sync with the checkout queue | Async |" in text
    assert "| Requests past the 30 s timeout | — | 0 |" in text


def test_the_sqs_ceilings_are_measured_at_each_depth_and_keep_the_backlog(report):
    ceilings = results(report)["sqs_ceilings"]

    assert [c["depth"] for c in ceilings] == [0, 200]
    for c in ceilings:
        assert c["sends"] > 0 and c["received"] > 0
        # Receiving stops once it has taken what was sent (± one batch a thread): the backlog stays.
        assert c["received"] <= c["sends"] + 10 * c["threads"]
        assert c["client_cores"] >= 0 and c["server_cores"] >= 0


def test_capacity_and_memory_are_measured(report):
    data = results(report)

    steps = data["capacity"]["steps"]
    assert steps and all(s["accepted"] > 0 for s in steps)
    pools = {m["pool"]: m for m in data["memory"]}
    assert set(pools) == {"threads", "prefork"}
    assert pools["prefork"]["processes"] == 1 + 2  # the parent and one child per slot
    assert pools["threads"]["processes"] == 1
    assert all(m["peak_rss_mb"] >= m["idle_rss_mb"] > 0 for m in data["memory"])


def test_recommend_workers_takes_the_drain_studys_efficiency(report):
    out = StringIO()
    call_command(
        "recommend_workers", "--rate", "60", "--latency", "0.2", "--provider-limit", "0",
        "--report", str(report), stdout=out,
    )  # fmt: skip

    drain = next(r for r in results(report)["drain"] if r["workers"] == 3 and r["provider_limit"] == 0)
    assert (
        f"Efficiency {drain['efficiency']:.2f} (measured at 3 threads in 3 processes × 1 (drain study)"
        in (out.getvalue())
    )
    assert "Recommended workers:" in out.getvalue()


def test_deploy_recommend_reads_the_per_thread_rate_from_the_report(report):
    result = subprocess.run(
        [sys.executable, "-m", "deploy", "recommend", "--report", str(report), "--concurrency", "3"],
        cwd=BASE_DIR, capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    drain = next(r for r in results(report)["drain"] if r["workers"] == 3 and r["provider_limit"] == 0)
    per_thread = drain["efficiency"] / 3  # the lab's efficiency at the stack's 3 s (the lab ran 0.2 s)
    assert f"per worker thread: {per_thread:.3f} orders/s (measured: {drain['name']} in {report})" in (
        result.stdout
    )
