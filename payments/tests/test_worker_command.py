"""`celery -A config worker` as typed: threads by default, and --pool still chooses the pool."""

import time

import pytest

from config.celery_app import pool_named_on_command_line


@pytest.mark.parametrize(
    ("argv", "pool"),
    [
        (["celery", "-A", "config", "worker"], None),
        (["celery", "-A", "config", "worker", "--pool=prefork"], "prefork"),
        (["celery", "-A", "config", "worker", "--pool", "solo", "-c", "1"], "solo"),
        (["celery", "-A", "config", "worker", "-P", "prefork"], "prefork"),
        (["celery", "-A", "config", "worker", "-Pprefork"], "prefork"),
    ],
)
def test_the_pool_is_read_from_the_command_line(argv, pool):
    assert pool_named_on_command_line(argv) == pool


def banner_pool(process, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in process.log_path.read_text(errors="replace").splitlines():
            if ".> concurrency:" in line:
                return line.split(".> concurrency:", 1)[1].strip()
        time.sleep(0.1)
    raise AssertionError(f"no worker banner in {process.log_path}")


@pytest.mark.parametrize(("pool", "expected"), [("threads", "2 (thread)"), ("prefork", "2 (prefork)")])
def test_a_worker_runs_the_pool_it_was_asked_for(start_worker, pool, expected):
    worker = start_worker(f"pool-{pool}", concurrency=2, pool=pool)

    assert banner_pool(worker) == expected


def test_a_worker_without_pool_uses_threads(stack, start_worker):
    worker = start_worker("default-pool", concurrency=3, pool=None)

    assert banner_pool(worker) == "3 (thread)"
