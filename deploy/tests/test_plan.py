"""`python -m deploy plan` and the connection arithmetic it prints (deploy/plan.py, deploy/settings.py)."""

import math
from pathlib import Path

import pytest

from deploy import plan
from deploy.cli import main
from deploy.settings import ShopSettings, db_max_connections

CAPACITY_PLAN = Path(__file__).resolve().parents[2] / "docs" / "capacity-plan.md"


def needs(rate: float, **kw) -> dict[str, plan.Need]:
    return {need.part: need for need in plan.plan(rate, **kw)}


def test_max_connections_follow_rds_formula_for_the_instance_memory():
    assert db_max_connections("t4g.micro") == 84
    assert db_max_connections("m7g.large") == 873
    assert db_max_connections("m7g.16xlarge") == 5000  # RDS caps the formula at 5,000


def test_each_consumer_mode_counts_only_its_own_connections():
    shop = ShopSettings(max_workers=30, lambda_max_concurrency=400)
    ecs, lam = shop.client_connections("ecs"), shop.client_connections("lambda")
    shared = sum(shop.processes(r) * shop.pool_size(r) for r in ("web", "relay", "sweeper", "oneoff"))
    assert ecs == shared + 30 * shop.worker_pool_size
    assert lam == shared + 400 * 1
    with pytest.raises(ValueError, match="consumer is ecs or lambda"):
        shop.roles("both")


def test_a_web_process_pools_one_connection_per_thread():
    shop = ShopSettings(web_threads=48)
    assert shop.pool_size("web") == 48
    assert shop.pool_size("sweeper") == shop.pool_size("oneoff") == 2


def test_the_relays_count_in_the_connection_budget_with_a_connection_per_thread_and_one_spare():
    shop = ShopSettings(relay_count=3, relay_threads=4)
    assert shop.pool_size("relay") == 5 and shop.processes("relay") == 3
    assert all("relay" in shop.roles(consumer) for consumer in ("ecs", "lambda"))
    # each relay thread counts as one connection always busy, at any rate
    assert shop.busy_connections(0) == 3 * 4 + shop.processes("sweeper") + shop.processes("oneoff")
    assert shop.busy_connections(1000) == pytest.approx(shop.busy_connections(0) + 1000 * 0.008)


def test_the_proxy_keeps_the_reserved_connections_free():
    shop = ShopSettings(db_instance="m7g.large", proxy_max_connections_percent=100)
    assert shop.proxy_connections == 873 - shop.db_reserved_connections


def test_a_sale_too_big_for_the_instance_is_named():
    small = ShopSettings(db_instance="t4g.micro")
    assert small.connection_problems(60) == []
    problems = small.connection_problems(10_000)
    assert problems and "a larger instance" in problems[0]


def test_the_workers_pay_the_rate_at_the_measured_efficiency_in_two_azs_at_least():
    workers = needs(60)["ECS workers"].need
    threads = math.ceil(60 * 3 / plan.WORKER_EFFICIENCY)
    assert workers.startswith(f"{threads} threads = 2 tasks")  # one per AZ, even when one would do
    big = needs(10_000)["ECS workers"].need
    assert f"× {plan.WORKER_THREADS_MEASURED} " in big  # never past the measured thread count


def test_relay_tasks_cover_the_measured_cpu_per_order_and_two_at_least():
    # 0.22 ms per order on 0.25 vCPU under 60 %: ~680 orders/s a task; a thread's passes ~650/s
    assert needs(60)["relay"].need.startswith("2 tasks")  # one per AZ, even when one would do
    assert needs(1000)["relay"].need.startswith("2 tasks")
    assert needs(10_000)["relay"].need.startswith("15 tasks")  # ceil(10,000 × 0.22 ms / 0.15 vCPU)
    assert "0.22 ms of CPU per order" in needs(10_000)["relay"].note
    parts = [need.part for need in plan.plan(60)]
    assert parts.index("web") < parts.index("relay") < parts.index("SQS")  # the order a request meets them


def test_the_seeds_provider_limit_is_reported_as_a_growing_backlog():
    provider = needs(60, provider_limit=1)["payment provider"]
    assert "pays 0.33/s" in provider.note and "grows 59.7/s" in provider.note
    assert "must allow" in needs(60)["payment provider"].note


def test_ten_thousand_orders_a_second_name_what_aws_and_the_design_limit():
    ten_k = needs(10_000)
    assert "quota increase" in ten_k["or Lambda"].note
    assert "a Redis gate" in ten_k["PostgreSQL"].note
    assert ten_k["PostgreSQL"].need.startswith("m7g.16xlarge")
    assert "quota" not in needs(60)["or Lambda"].note


def test_beyond_the_largest_primary_the_plan_says_split_rather_than_pick_an_instance():
    db = needs(40_000)["PostgreSQL"]
    assert "more than one primary offers" in db.need
    assert "split the orders" in db.note


def test_plan_command_prints_the_arithmetic_and_every_part(capsys):
    assert main(["plan", "--rate", "60", "1000"]) == 0
    out = capsys.readouterr().out
    assert "consumer=ecs: client connections web" in out
    assert "consumer=lambda: client connections web" in out
    assert "180 charges in flight" in out and "3,000 charges in flight" in out
    assert "relay 2 × 3 = 6" in out  # the stack's two relays, a pool of RELAY_THREADS + 1 each
    assert out.count("  relay ") == 2  # a relay row at each rate


def test_docs_capacity_plan_carries_the_current_table(capsys):
    """docs/capacity-plan.md quotes `python -m deploy plan --markdown`: regenerate it when this fails."""
    main(["plan", "--markdown"])
    table = capsys.readouterr().out.strip()
    assert table in CAPACITY_PLAN.read_text()
