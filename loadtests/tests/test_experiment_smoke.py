"""The experiment runner end to end with a tiny load: its report and data files, and their consistency.

The runner starts its own stack (SQS emulator, sandbox, gunicorn, workers) as `make experiment` does;
the checks recompute the report's figures from the raw files it wrote.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from io import StringIO
from itertools import pairwise
from pathlib import Path

import pytest
from django.core.management import call_command

from devstack.stack import BASE_DIR

pytestmark = pytest.mark.lab

TINY = [
    "--users",
    "3",
    "--duration",
    "3",
    "--latency",
    "0.2",
    "--workers",
    "2",
    "--provider-limits",
    "1,0",
    "--drain-cap",
    "3",
    "--capacity-rates",
    "10",
    "--capacity-seconds",
    "2",
    "--ceiling-seconds",
    "1",
    "--ceiling-threads",
    "2",
    "--prefork",
    "2",
]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """Run the study once for every test in this module; return its report folder."""
    out = tmp_path_factory.mktemp("reports")
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadtests.experiment",
            *TINY,
            "--out",
            str(out),
            "--database-url",
            f"sqlite:///{out / 'shop.sqlite3'}",
        ],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    return folder


def results(report: Path) -> dict:
    return json.loads((report / "data" / "results.json").read_text())


def read_csv(path: Path) -> list[dict]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_the_report_opens_with_the_environment_and_has_every_section_and_chart(report):
    text = (report / "report.md").read_text()

    assert text.startswith("# Flash-sale checkout: load study")
    environment = text.split("## Environment", 1)[1].split("## 1.", 1)[0]
    assert f"| CPUs | {os.cpu_count()} ×" in environment
    assert "| payment latency | 0.2 s per charge" in environment
    assert "| provider limits studied | 1 at a time, none" in environment
    for heading in (
        "## 1. Sync vs async",
        "## 2. Worker scaling",
        "## 3. The provider limit",
        "## 4. Capacity",
        "## 5. Worker memory",
        "## 6. Sizing",
    ):
        assert heading in text
    for chart in ("queue-depth.png", "response-times.png", "processing-rate.png"):
        assert f"]({chart})" in text
        assert (report / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_scaling_run_accounts_for_each_order_it_accepted(report):
    for run in results(report)["scaling"]:
        orders = read_csv(report / "data" / f"orders_{run['name']}.csv")
        statuses = [o["status"] for o in orders]

        assert run["db_paid"] + run["db_failed"] + run["in_flight"] == run["db_orders"] == len(orders) > 0
        assert statuses.count("paid") == run["db_paid"]
        assert run["in_flight"] == statuses.count("accepted") + statuses.count("processing")
        # Locust misses only the requests still open when it stopped, at most one per user.
        assert 0 <= run["db_orders"] - run["accepted_202"] <= 3
        assert run["provider"]["charges"] >= run["db_paid"]
        assert run["provider"]["keys_charged_more_than_once"] == 0
        cpu = run["cpu_seconds"]
        assert cpu["wall"] > 0 and cpu["worker"] > 0 and cpu["web"] > 0
        assert all(seconds >= 0 for seconds in cpu.values())


def test_the_processing_rate_and_efficiency_follow_from_the_order_timings(report):
    for run in results(report)["scaling"]:
        orders = read_csv(report / "data" / f"orders_{run['name']}.csv")
        paid = [o for o in orders if o["status"] == "paid"]
        first_claim = min(float(o["claimed_at"]) for o in orders if o["claimed_at"])
        end = run["drained_at"] if run["drained_at"] is not None else run["stopped_at"]

        assert run["measured_rate"] == pytest.approx(len(paid) / (end - first_claim))
        slots = min(run["workers"], run["provider_limit"] or run["workers"])
        assert run["ideal_rate"] == pytest.approx(slots / run["latency"])
        assert run["efficiency"] == pytest.approx(run["measured_rate"] / run["ideal_rate"])


def test_drain_figures_agree_with_the_measured_rate(report):
    for run in results(report)["scaling"]:
        drain = run["drain"]
        if drain["kind"] == "measured":
            assert drain["remaining_at_stop"] == 0 == run["in_flight"]
            assert 0 <= drain["seconds"] <= drain["observed_seconds"] + 1
            assert "extrapolated" not in run["drain_label"]
        else:
            assert drain["remaining_at_stop"] == run["in_flight"] > 0
            assert drain["seconds"] == pytest.approx(
                drain["observed_seconds"] + drain["remaining_at_stop"] / run["measured_rate"]
            )
            assert run["drain_label"].endswith("(extrapolated)")


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


def test_sync_and_async_figures_come_from_locusts_own_statistics(report):
    data = results(report)
    sync, asyn = data["sync_vs_async"]["sync"], data["sync_vs_async"]["async"]
    stats = {row["Name"]: row for row in read_csv(report / "data" / "locust_sync_stats.csv")}

    assert sync["requests"] == int(stats["POST /api/orders/sync"]["Request Count"]) > 0
    assert sync["db_paid"] <= sync["db_orders"]
    assert asyn["from_run"] in {run["name"] for run in data["scaling"]}
    assert asyn["requests"] > 0


def test_capacity_and_memory_and_the_send_ceiling_are_measured(report):
    data = results(report)

    assert data["sqs_send_ceiling"]["sends"] > 0
    assert data["sqs_send_ceiling"]["rate"] == pytest.approx(
        data["sqs_send_ceiling"]["sends"] / data["sqs_send_ceiling"]["seconds"], rel=0.02
    )
    steps = data["capacity"]["steps"]
    assert steps and all(s["accepted"] > 0 for s in steps)
    pools = {m["pool"]: m for m in data["memory"]}
    assert set(pools) == {"threads", "prefork"}
    assert pools["prefork"]["processes"] == 1 + 2  # the parent and one child per slot
    assert pools["threads"]["processes"] == 1
    assert all(m["peak_rss_mb"] >= m["idle_rss_mb"] > 0 for m in data["memory"])


def test_recommend_workers_reads_the_reports_measured_efficiency(report):
    out = StringIO()
    call_command(
        "recommend_workers",
        "--rate",
        "60",
        "--latency",
        "0.2",
        "--provider-limit",
        "0",
        "--report",
        str(report),
        stdout=out,
    )

    assert "measured at 2 workers" in out.getvalue()
    assert "Recommended workers:" in out.getvalue()
