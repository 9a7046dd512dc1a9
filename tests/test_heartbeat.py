"""Worker and sweeper liveness: the process touches a file, the container health check reads its age."""

import os
import time

from django.core.management import call_command

from config import heartbeat
from orders.management.commands import sweep_orders


def test_a_fresh_heartbeat_passes_and_a_stale_or_missing_one_fails(tmp_path, monkeypatch):
    monkeypatch.setenv("HEARTBEAT_DIR", str(tmp_path))

    assert heartbeat.main(["worker", "--max-age", "60"]) == 1  # never beat
    heartbeat.beat("worker")
    assert heartbeat.main(["worker", "--max-age", "60"]) == 0
    old = time.time() - 120
    os.utime(heartbeat.path("worker"), (old, old))
    assert heartbeat.main(["worker", "--max-age", "60"]) == 1


def test_the_sweeper_loop_beats_each_pass(tmp_path, monkeypatch, db):
    monkeypatch.setenv("HEARTBEAT_DIR", str(tmp_path))
    monkeypatch.setattr(sweep_orders.threading.Event, "wait", lambda self, timeout=None: self.set())

    call_command("sweep_orders", "--every", "1")

    seconds = heartbeat.age("sweeper")
    assert seconds is not None and seconds < 5


def test_a_bad_usage_is_exit_code_2():
    assert heartbeat.main(["web"]) == 2


def test_a_running_celery_worker_beats_from_its_consumer_loop(start_worker, tmp_path):
    start_worker(HEARTBEAT_DIR=str(tmp_path))
    beat_file = tmp_path / "flashsale-worker.heartbeat"

    deadline = time.monotonic() + 30
    while not beat_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert beat_file.exists()
    first = beat_file.stat().st_mtime
    time.sleep(heartbeat.BEAT_EVERY_SECONDS + 2)
    assert beat_file.stat().st_mtime > first  # beating, not just started
