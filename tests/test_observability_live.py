"""Metrics and logs as an operator sees them, from real processes: gunicorn (two processes, the
multiprocess registry served by its master), a Celery worker and the sweeper, each scraped on its
own metrics port; their JSON log lines followed from the web's request to the worker's charge."""

from __future__ import annotations

import json
import sys
import time
import uuid

import httpx
import psutil
import pytest
from django.conf import settings
from django.core.management import call_command
from prometheus_client.parser import text_string_to_metric_families

from devstack.stack import Process, Stack, free_port, wait_for_http
from queues.sqs import queue_depth
from tests.fixtures import database_url

pytestmark = pytest.mark.integration

BODY = {"email": "ann@example.com", "items": [{"sku": "travel-mug", "quantity": 1}]}
# A small pool per process: PostgreSQL's connections are shared with the rest of the suite.
SMALL_POOL = {"DB_POOL_MAX_SIZE": "2"}


def scrape(port: int) -> dict[tuple[str, frozenset], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def json_lines(process: Process) -> list[dict]:
    lines = []
    for raw in process.log_path.read_text().splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue  # Celery's start-up banner is not a log record
        if isinstance(line, dict):
            lines.append(line)
    return lines


@pytest.fixture
def web(stack: Stack, transactional_db, payment_queue):
    call_command("seed_catalogue")
    metrics_port = free_port()
    process = stack.start_web(
        name="web-observed",
        workers=2,
        threads=4,
        DATABASE_URL=database_url(),
        WEB_METRICS_PORT=str(metrics_port),
        LOG_FORMAT="json",
        **SMALL_POOL,
    )
    url = f"http://127.0.0.1:{process.argv[process.argv.index('--bind') + 1].rsplit(':', 1)[1]}"
    wait_for_http(f"http://127.0.0.1:{metrics_port}/metrics", proc=process.popen)
    try:
        yield process, url, metrics_port
    finally:
        process.stop()
        stack.processes.remove(process)


def wait_paid(url: str, order_id: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while httpx.get(f"{url}/api/orders/{order_id}", timeout=10).json()["status"] != "paid":
        assert time.monotonic() < deadline, f"order {order_id} not paid within {timeout}s"
        time.sleep(0.2)


def test_metrics_follow_an_order_from_accepted_to_paid_and_its_log_lines_carry_its_id_web_to_worker(
    web, start_worker, provider
):
    web_process, url, web_metrics = web
    worker_metrics = free_port()
    worker = start_worker(WORKER_METRICS_PORT=str(worker_metrics), LOG_FORMAT="json", **SMALL_POOL)
    wait_for_http(f"http://127.0.0.1:{worker_metrics}/metrics", proc=worker.popen)
    web_before, worker_before = scrape(web_metrics), scrape(worker_metrics)
    request_id = f"trace-{uuid.uuid4()}"

    response = httpx.post(
        f"{url}/api/orders/async", json=BODY, headers={"X-Request-ID": request_id}, timeout=30
    )
    assert response.status_code == 202, response.text
    order_id = response.json()["id"]
    wait_paid(url, order_id)

    assert response.headers["X-Request-ID"] == request_id
    web_after, worker_after = scrape(web_metrics), scrape(worker_metrics)
    assert value(web_after, "flashsale_orders_total", status="accepted", mode="async") == (
        value(web_before, "flashsale_orders_total", status="accepted", mode="async") + 1
    )
    assert value(web_after, "flashsale_checkout_duration_seconds_count", mode="async") == (
        value(web_before, "flashsale_checkout_duration_seconds_count", mode="async") + 1
    )
    assert value(worker_after, "flashsale_orders_total", status="paid", mode="async") == (
        value(worker_before, "flashsale_orders_total", status="paid", mode="async") + 1
    )
    assert value(worker_after, "flashsale_order_accepted_to_paid_seconds_count") == (
        value(worker_before, "flashsale_order_accepted_to_paid_seconds_count") + 1
    )
    assert value(worker_after, "flashsale_charge_attempts_total", outcome="charged") == (
        value(worker_before, "flashsale_charge_attempts_total", outcome="charged") + 1
    )
    assert value(worker_after, "flashsale_charge_outcomes_total", outcome="paid") == (
        value(worker_before, "flashsale_charge_outcomes_total", outcome="paid") + 1
    )
    assert len(provider.ledger()) == 1  # the witness: one charge was made
    # Not on the public port.
    assert httpx.get(f"{url}/metrics", timeout=10).status_code == 404

    web_lines = [line for line in json_lines(web_process) if line.get("order_id") == order_id]
    worker_lines = [line for line in json_lines(worker) if line.get("order_id") == order_id]
    assert any(line["event"] == "order accepted" for line in web_lines)
    assert all(line["request_id"] == request_id for line in web_lines)
    assert worker_lines and all(line.get("task_id") for line in worker_lines)
    assert {"processing", "paid"} <= {line.get("to_status") for line in worker_lines}
    assert any(line.get("outcome") == "paid" for line in worker_lines)
    # What starting cost it, logged once as its consumer began (the load lab counts from it).
    [start_up] = [line for line in json_lines(worker) if "startup_cpu_seconds" in line]
    assert 0 < start_up["startup_cpu_seconds"] < 60


def test_the_sweeper_samples_the_backlog_and_the_queue_on_its_own_port(stack: Stack, web, empty_queue):
    _, url, _ = web
    order_id = httpx.post(f"{url}/api/orders/async", json=BODY, timeout=30).json()["id"]
    time.sleep(1.1)  # no worker: the order waits, and its job sits in SQS
    port = free_port()
    sweeper = stack.spawn(
        "sweeper-observed",
        [sys.executable, "manage.py", "sweep_orders", "--every", "0.5"],
        DATABASE_URL=database_url(),
        SWEEPER_METRICS_PORT=str(port),
        LOG_FORMAT="json",
        **SMALL_POOL,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/metrics", proc=sweeper.popen)
        deadline = time.monotonic() + 20
        while not value(samples := scrape(port), "flashsale_sqs_waiting_messages"):
            assert time.monotonic() < deadline, "the sweeper never sampled the queue"
            time.sleep(0.2)
    finally:
        sweeper.stop()
        stack.processes.remove(sweeper)

    assert value(samples, "flashsale_sqs_waiting_messages") == 1  # the one job
    assert queue_depth(settings.SQS_QUEUE_URL).visible == 1  # ... as SQS itself counts it
    dead = queue_depth(settings.SQS_DLQ_URL)
    assert (
        value(samples, "flashsale_sqs_dead_lettered_messages") == dead.visible + dead.in_flight + dead.delayed
    )
    assert value(samples, "flashsale_oldest_waiting_order_age_seconds") >= 1  # our order, still waiting
    assert value(samples, "flashsale_outbox_unpublished_orders") == 0
    assert httpx.get(f"{url}/api/orders/{order_id}", timeout=10).json()["status"] == "accepted"


def test_each_web_process_warms_up_and_freezes_what_it_loaded_before_its_first_request(web):
    web_process, url, _ = web
    assert httpx.get(f"{url}/api/products", timeout=10).status_code == 200

    workers = {child.pid for child in psutil.Process(web_process.pid).children()}

    def frozen() -> dict[int, int]:  # this web's processes (its log file is shared with earlier webs)
        lines = [line for line in json_lines(web_process) if line.get("event") == "startup objects frozen"]
        return {line["pid"]: line["frozen_objects"] for line in lines if line["pid"] in workers}

    deadline = time.monotonic() + 20  # the web is ready once one process serves; the other may still boot
    while len(frozen()) < len(workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(workers) == 2 and frozen().keys() == workers  # config/gunicorn.py post_worker_init
    assert all(count > 10_000 for count in frozen().values())
    # Warmed up first (config/startup.py), completely: the database and SQS of this stack answer.
    lines = [line for line in json_lines(web_process) if line.get("pid") in workers]
    events = [line["event"] for line in lines]
    assert not any(event.startswith("web warm-up incomplete") for event in events)
    for pid in workers:
        mine = [line["event"] for line in lines if line["pid"] == pid]
        warmed = next(i for i, event in enumerate(mine) if event.startswith("web warmed up in"))
        assert warmed < mine.index("startup objects frozen")
