"""Small, fast versions of the `make chaos` scenarios, asserting the shop's two promises:
no accepted order is lost, and no order is charged twice."""

import json

import pytest
from django.conf import settings

from devstack.stack import Stack
from loadtests.chaos import FAST_RECOVERY_ENV, FAST_TIMEOUTS
from loadtests.chaos.exactly_once import (
    WITNESSED,
    db_restart_after_charge,
    lost_answer,
    provider_409,
    slow_drip,
)
from loadtests.chaos.relay_scenarios import relay_and_web_killed
from loadtests.chaos.scenarios import (
    ChaosRig,
    broker_outage,
    duplicate_delivery,
    idempotent_checkout,
    oversell_race,
    per_customer_race,
    poison_messages,
    provider_faults,
    same_order_race,
    sigkill_workers,
    stock_release,
)
from queues.sqs import ensure_queues, sqs_client
from tests.fixtures import WORKER_POLL_SECONDS, database_url

pytestmark = pytest.mark.chaos


@pytest.fixture
def rig(stack: Stack, live_server, transactional_db, products, provider, empty_queue, settings):
    port = int(stack.env["SQS_ENDPOINT_URL"].rsplit(":", 1)[1])
    # The live server (the web) and this process (the witness) on the chaos timings, as the workers.
    settings.PAYMENT_TIMEOUT_SECONDS = FAST_TIMEOUTS.payment
    settings.SYNC_PAYMENT_TIMEOUT_SECONDS = FAST_TIMEOUTS.sync_payment
    settings.ORDER_LEASE_SECONDS = FAST_TIMEOUTS.lease
    settings.PAYMENT_PROVIDER_TIMEOUT_SECONDS = FAST_TIMEOUTS.provider
    settings.PAYMENT_SETTLE_SECONDS = FAST_TIMEOUTS.settle
    # The scenarios' provider runs every charge at once (concurrency 0): no sync checkout queue, as
    # `make chaos`'s web is told (loadtests/bench.py).
    settings.PAYMENT_PROVIDER_CONCURRENCY = 0

    def restart_sqs() -> None:
        stack.start_sqs(port)
        ensure_queues()

    env = {
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        **FAST_RECOVERY_ENV,
        "SQS_WAIT_TIME_SECONDS": str(WORKER_POLL_SECONDS),
    }
    bench = ChaosRig(stack, live_server.url, provider, env, restart_sqs, sku="mug")
    yield bench
    bench.stop_all()
    if not any(p.name == "sqs" and p.alive() for p in stack.processes):
        restart_sqs()  # a failed outage test must not take SQS away from the rest of the suite


def assert_promises_kept(result: dict) -> None:
    assert result["lost"] == 0, result
    assert result["charged_twice"] == 0, result
    assert result["paid"] + result["failed"] == result["accepted"], result


def test_sigkilled_workers_lose_nothing_and_charge_nothing_twice(rig):
    result = sigkill_workers(rig, orders=40, workers=2, kills=2, latency=0.3, timeout=90)

    assert_promises_kept(result)
    assert result["accepted"] == 40
    assert result["failed"] == 0


def test_a_broker_outage_still_accepts_orders_and_they_are_paid_after_recovery(rig):
    result = broker_outage(rig, orders=12, outage=3, timeout=90)

    assert result["accepted_during_outage"] == result["posted_during_outage"] == 9
    assert_promises_kept(result)
    assert result["paid"] == 12


def test_every_job_delivered_three_times_charges_each_order_once(rig):
    result = duplicate_delivery(rig, orders=10, copies=3)

    assert_promises_kept(result)
    assert result["charges_per_order"] == [1]
    assert result["claims"] == 10


def test_racing_attempts_on_the_same_order_have_exactly_one_winner(rig):
    result = same_order_race(rig, runs=20, racers=8)

    assert result["winners_per_run"] == [1]
    assert result["extra_charges"] == 0
    assert result["paid"] == 20


def test_provider_faults_are_retried_and_declines_are_final(rig):
    result = provider_faults(rig, orders=30, error_rate=0.3, decline_rate=0.05, timeout=90)

    assert_promises_kept(result)
    assert result["retried"] > 0
    assert result["failed"] == result["declined"]  # nothing failed for want of retries


@pytest.fixture
def fast_redrive(empty_queue):
    """Let unreadable messages reach the DLQ within seconds (the session queue waits minutes)."""
    client = sqs_client()
    dlq_arn = client.get_queue_attributes(QueueUrl=settings.SQS_DLQ_URL, AttributeNames=["QueueArn"])
    fast = {
        "VisibilityTimeout": "2",
        "RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dlq_arn["Attributes"]["QueueArn"], "maxReceiveCount": "2"}
        ),
    }
    client.set_queue_attributes(QueueUrl=empty_queue, Attributes=fast)
    yield
    ensure_queues()


def test_poison_messages_end_in_the_dlq_or_are_acked_and_never_block_healthy_orders(rig, fast_redrive):
    result = poison_messages(rig, healthy=10, poison=4, timeout=60)

    assert_promises_kept(result)
    assert result["paid"] == 10
    assert result["dead_lettered"] == 2  # the unreadable ones
    assert result["left_in_queue"] == 0


def test_concurrent_clients_with_one_idempotency_key_create_one_order(rig):
    result = idempotent_checkout(rig, clients=20)

    assert result["orders_created"] == 1
    assert result["first"] == 1
    assert result["first"] + result["conflicts_409"] + result["replays"] == 20


def test_racing_buyers_take_exactly_the_stock_and_the_rest_get_409s_or_replays(rig):
    result = oversell_race(rig, stock=20, requests=100, threads=20, timeout=60)

    assert_promises_kept(result)
    assert result["accepted_202"] == result["orders"] == 20
    assert result["sold"] + result["reserved"] == 20
    assert result["oversold"] == result["leaked"] == result["unexpected_responses"] == 0
    assert result["out_of_stock_409"] + result["in_progress_409"] + result["replays"] == 80
    assert result["paid"] == result["charged_in_ledger"] == result["sold"] == 20


def test_declined_orders_give_their_units_back_once_and_they_sell_again(rig):
    result = stock_release(rig, stock=20, decline_rate=0.3, error_rate=0.1, timeout=90)

    assert_promises_kept(result)
    assert result["failed"] > 0
    assert result["released_events"] == result["failed_orders"]
    assert result["reserved"] == 0
    assert result["left"] + result["sold"] == 20
    assert result["sold"] == result["units_paid"] == result["charged_in_ledger"]
    assert result["oversold"] == result["leaked"] == 0


# --- exactly once against a provider with real idempotency semantics ---------------------------


def assert_exactly_once(result: dict) -> None:
    """Every checkout ended as one final order, charged at most once, and the books agree."""
    assert_promises_kept(result)
    assert result["two_orders_per_checkout"] == 0, result
    for kind in WITNESSED:
        assert result[kind] == 0, (kind, result)


def test_sync_timeouts_racing_workers_on_one_key_get_409s_and_no_charged_order_fails(rig):
    """Every charge outlasts the sync timeout (1 s) and the settle wait (5 s): workers meet the key
    in flight. Before the fix the 409 failed the order and released its stock, then the charge landed."""
    result = provider_409(
        rig, sync=6, asynchronous=2, latency=1.5, slow_rate=1.0, slow_seconds=7, timeout=150
    )

    assert_exactly_once(result)
    assert result["conflicts_409"] > 0
    assert result["failed"] == 0 and result["paid"] == 8


def test_charges_whose_answers_are_lost_or_500s_are_paid_once_never_failed(rig):
    result = lost_answer(
        rig, sync=4, asynchronous=12, lost_rate=0.3, error_after_charge_rate=0.2, timeout=150
    )

    assert_exactly_once(result)
    assert result["failed"] == 0 and result["paid"] == 16
    stats = rig.sandbox.stats()
    assert stats["lost_answers"] + stats["errors_after_charge"] > 0


def test_a_dripped_answer_never_outlives_the_lease_and_a_stale_attempt_changes_nothing(rig):
    result = slow_drip(rig, asynchronous=6, timeout=150)

    assert_exactly_once(result)
    assert result["lease_expiries"] == 0
    assert result["failed"] == 0 and result["paid"] == 6


# Every connection of the stack is killed each second, so how long the crowd takes to settle follows
# the machine's load: 70–120 s alone, past 180 s beside a full suite's other processes. A liveness
# bound, not a speed goal: the scenario's own default, and the test's timeout above it.
@pytest.mark.timeout(300)
def test_killing_every_database_connection_between_charge_and_record_loses_and_doubles_nothing(rig):
    result = db_restart_after_charge(rig, sync=6, asynchronous=12, timeout=240)

    assert_exactly_once(result)
    assert result["connections_killed"] > 0
    assert result["failed"] == 0


def test_the_relay_and_web_processes_sigkilled_mid_sale_lose_no_order(rig):
    result = relay_and_web_killed(rig, orders=80, rate=16, kills=4, timeout=90)

    assert_promises_kept(result)
    assert result["relay_sigkills"] == 2 and result["web_sigkills"] == 2
    assert result["restarts"] >= 2  # the relay came back after each kill (no sweeper runs)
    assert result["never_published"] == 0 and not result["not_final"]


def test_racing_checkouts_of_each_customer_get_exactly_the_limit_and_declines_give_units_back(rig):
    result = per_customer_race(rig, customers=4, racers=10, limit=2, decline_rate=0.3, timeout=60)

    assert_promises_kept(result)
    assert result["accepted_202"] == 4 * 2
    assert result["per_customer_limit_409"] == 4 * 8
    assert result["over_limit"] == result["miscounted"] == result["unexpected_responses"] == 0
