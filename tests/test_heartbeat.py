"""Worker and sweeper liveness: the process touches a file, the container health check reads its age."""

import os
import time

import pytest
from django.core.management import call_command

from devstack.stack import BASE_DIR
from observability import heartbeat
from orders import checkout
from orders.management.commands import sweep_orders
from queues.sqs import ensure_queues
from tests.fixtures import WORKER_POLL_SECONDS, wait_for_status


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


# --- a real worker: the heartbeat proves that its consumer polls SQS --------------------------------

MAX_AGE = 6  # seconds; the test workers long-poll for 1 s (tests/fixtures.py)

# The kombu#1127 mechanism in a worker: the callback that schedules the next poll never runs, so the
# consumer's poll chain ends while the process and its event loop (timers included) keep running.
# (kombu 5.7's own #1127 bug, put back, crashes this worker outright on a failed poll instead: a
# case ECS already replaces. Losing the callback is the silent case the heartbeat exists for.)
POLL_CHAIN_LOST = """
import queues.sqs_transport
queues.sqs_transport.Channel._poll_done = lambda self, queue, messages_fetched=None: None
"""


def sqs_outage(stack, seconds: float = 3) -> None:
    """Stop the test SQS server, then start it again on its port with its queues set up again."""
    port = int(stack.env["SQS_PORT"])
    stack.stop_named("sqs")
    time.sleep(seconds)
    stack.start_sqs(port)
    ensure_queues()


@pytest.fixture
def beat_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HEARTBEAT_DIR", str(tmp_path))  # the check reads it, as in the container
    return tmp_path


def wait_for_first_beat(beat_dir, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not (beat_dir / "flashsale-worker.heartbeat").exists():
        assert time.monotonic() < deadline, "the worker never beat"
        time.sleep(0.2)


def test_a_healthy_worker_beats_through_an_sqs_outage_and_pays_after_it(
    start_worker, stack, provider, products, beat_dir
):
    worker = start_worker(HEARTBEAT_DIR=str(beat_dir))
    wait_for_first_beat(beat_dir)

    sqs_outage(stack)
    order = checkout.place_async_order(email="a@example.com", lines=[checkout.Line("mug", 1)])

    assert wait_for_status(order, "paid").status == "paid"  # it consumes again
    time.sleep(MAX_AGE + 1)  # idle now: it beats once per long poll
    assert worker.alive()
    assert heartbeat.main(["worker", "--max-age", str(MAX_AGE)]) == 0


def test_a_worker_whose_consumer_stopped_polling_fails_its_health_check(
    start_worker, stack, provider, products, beat_dir, tmp_path_factory
):
    patch_dir = tmp_path_factory.mktemp("poll_chain_lost")
    (patch_dir / "sitecustomize.py").write_text(POLL_CHAIN_LOST)
    worker = start_worker(HEARTBEAT_DIR=str(beat_dir), PYTHONPATH=f"{patch_dir}{os.pathsep}{BASE_DIR}")
    wait_for_first_beat(beat_dir)
    time.sleep(WORKER_POLL_SECONDS + 2)  # its first long poll ends, and with it the chain

    order = checkout.place_async_order(email="a@example.com", lines=[checkout.Line("mug", 1)])
    time.sleep(MAX_AGE)

    order.refresh_from_db()
    assert order.status == "accepted"  # the witness: nothing consumes its job
    assert worker.alive()  # yet the process lives: only the heartbeat tells
    assert heartbeat.main(["worker", "--max-age", str(MAX_AGE)]) == 1
