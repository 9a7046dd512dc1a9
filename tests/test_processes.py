"""The process commands (config.processes): one definition, and the worker runs the pool it is given."""

import time

import pytest

from config import processes
from devstack.stack import BIN
from tests.fixtures import database_url


def test_the_web_command_takes_its_timeout_from_the_checked_settings(settings):
    settings.WEB_TIMEOUT_SECONDS = 77

    argv = processes.argv_from_environment("web", {"WEB_PORT": "8123", "WEB_THREADS": "8"})

    assert argv[:2] == ["gunicorn", "config.wsgi"]
    assert argv[argv.index("--bind") + 1] == "127.0.0.1:8123"
    assert argv[argv.index("--timeout") + 1] == "77"
    assert argv[argv.index("--threads") + 1] == "8"


def test_the_worker_command_names_the_threads_pool_and_the_concurrency():
    argv = processes.argv_from_environment("worker", {"WORKER_CONCURRENCY": "200"})

    assert argv[:4] == ["celery", "-A", "config", "worker"]
    assert "--concurrency=200" in argv
    assert "--pool=threads" in argv


def test_the_sweeper_command_loops():
    assert processes.argv_from_environment("sweeper", {}) == [
        "python",
        "manage.py",
        "sweep_orders",
        "--every",
    ]


def test_an_unknown_role_is_refused():
    with pytest.raises(SystemExit, match="unknown role"):
        processes.argv_from_environment("scheduler", {})


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


def test_a_worker_typed_by_hand_without_a_pool_uses_threads(stack, empty_queue, transactional_db):
    # `celery -A config worker --concurrency=3`, as docs/configuration.md tells an operator to type it.
    argv = [str(BIN / "celery"), "-A", "config", "worker", "--concurrency=3", "--without-mingle"]
    worker = stack.spawn(
        "by-hand", argv, DATABASE_URL=database_url(), DJANGO_SETTINGS_MODULE="config.settings.local"
    )
    try:
        assert banner_pool(worker) == "3 (thread)"
    finally:
        worker.stop()
        stack.processes.remove(worker)
