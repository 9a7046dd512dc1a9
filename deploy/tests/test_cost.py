"""The cost model: the seed's $17 reproduced from list prices, the free tier, batching, the break-even."""

import json

import pytest

from deploy import cost
from deploy.settings import ShopSettings

PRICES = cost.load_prices()


def test_the_price_file_is_dated_and_names_a_source_page_for_every_service():
    assert PRICES["as_of"] and PRICES["region"] == "us-east-1"
    priced = {"fargate", "lambda", "sqs", "alb", "nat", "rds", "secrets"}
    assert priced <= set(PRICES["sources"])
    assert all(url.startswith("https://aws.amazon.com/") for url in PRICES["sources"].values())


def test_the_seeds_17_dollars_is_two_small_tasks_running_all_month():
    seed = ShopSettings(worker_size=(256, 512), min_workers=2)

    parts = cost.ecs_consumer(cost.Scenario(10_000), seed, PRICES)

    assert parts["compute"] == pytest.approx(18.02, abs=0.01)  # the seed says ~$17


def test_ten_thousand_orders_fit_lambdas_free_tier():
    parts = cost.lambda_consumer(cost.Scenario(10_000), ShopSettings(), PRICES)

    assert parts["gb_seconds"] == pytest.approx(10_000 * 3.1 * 0.5)
    assert parts["compute"] == parts["sqs"] == 0  # only a few cents of logs
    assert cost.total(parts) < 0.01


def test_lambda_bills_the_providers_wait_twice_when_the_provider_takes_one_charge_at_a_time():
    free = cost.lambda_consumer(cost.Scenario(1e6), ShopSettings(), PRICES)
    serial = cost.lambda_consumer(cost.Scenario(1e6, provider_limit=1), ShopSettings(), PRICES)

    assert serial["gb_seconds"] == pytest.approx(1e6 * 6.1 * 0.5)
    assert serial["gb_seconds"] > 1.9 * free["gb_seconds"]


def test_sends_and_acks_in_batches_of_ten_cut_sqs_requests():
    parts = cost.ecs_consumer(cost.Scenario(1e6), ShopSettings(), PRICES)

    # 100k sends + 1M receives + 100k deletes + one idle task's long polls
    assert parts["sqs_requests"] == pytest.approx(1.2e6 + 730 * 180)


def test_break_even_is_where_the_two_lines_cross():
    shop = ShopSettings()
    even = cost.break_even(shop, PRICES)

    assert even is not None and 5e5 < even < 2e6
    below, above = cost.Scenario(even * 0.8), cost.Scenario(even * 1.25)
    assert cost.total(cost.lambda_consumer(below, shop, PRICES)) < cost.total(
        cost.ecs_consumer(below, shop, PRICES)
    )
    assert cost.total(cost.lambda_consumer(above, shop, PRICES)) > cost.total(
        cost.ecs_consumer(above, shop, PRICES)
    )


def test_the_table_marks_volumes_the_provider_cannot_take(tmp_path):
    text = cost.table([1e4, 1e7], ShopSettings(), PRICES, latency=3, provider_limit=1)

    assert "| 10,000 |" in text and "over the provider's 876,000 charges/month" in text
    assert "Break-even" in text


def test_the_chart_is_a_png(tmp_path):
    path = cost.chart(tmp_path / "cost.png", ShopSettings(), PRICES, latency=3, provider_limit=0)

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_prices_json_is_valid_json():
    assert json.loads(cost.PRICES.read_text())["currency"] == "USD"


def test_the_shop_around_the_consumer_pays_for_surviving_an_az():
    """Multi-AZ bills the standby as a second instance; a NAT gateway per AZ; the proxy per vCPU."""
    scenario = cost.Scenario(1e6)
    multi = cost.rest_of_shop(scenario, ShopSettings(db_multi_az=True), PRICES)
    single = cost.rest_of_shop(scenario, ShopSettings(db_multi_az=False), PRICES)

    assert multi["rds"] == pytest.approx(2 * single["rds"])
    assert multi["nat"] == pytest.approx(2 * 730 * PRICES["nat"]["hour"])
    assert multi["rds_proxy"] == pytest.approx(
        730 * 2 * PRICES["rds_proxy"]["vcpu_hour"]
    )  # m7g.large: 2 vCPU
    assert multi["waf"] > PRICES["waf"]["web_acl_month"]


def test_the_shop_around_the_consumer_pays_for_two_relays_all_month():
    scenario = cost.Scenario(1e6)
    shop = ShopSettings()
    parts = cost.rest_of_shop(scenario, shop, PRICES)
    one_task = 730 * cost.task_hour(shop.relay_size, PRICES)

    assert shop.relay_count == 2 and parts["relay"] == pytest.approx(2 * one_task)
    assert parts["relay"] == pytest.approx(18.02, abs=0.01)  # two 0.25 vCPU / 0.5 GB tasks
    more = cost.rest_of_shop(scenario, ShopSettings(relay_count=4), PRICES)
    assert more["relay"] == pytest.approx(2 * parts["relay"])
