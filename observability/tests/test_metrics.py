"""The metric definitions (observability/metrics.py): names and labels follow Prometheus' rules."""

from prometheus_client import REGISTRY

from observability import metrics

# Small closed sets, never an order id.
ALLOWED_LABELS = {"status", "mode", "outcome", "scope", "source", "answer"}


def families():
    return [f for f in REGISTRY.collect() if f.name.startswith(f"{metrics.PREFIX}_")]


def test_every_metric_is_named_by_the_conventions_and_has_no_per_order_label():
    found = families()
    assert len(found) >= 14
    for family in found:
        for sample in family.samples:
            assert set(sample.labels) - {"le"} <= ALLOWED_LABELS, sample
        if family.type == "counter":
            assert not family.name.endswith("_total")  # the client adds _total to the samples
        if family.type == "histogram":
            assert family.name.endswith("_seconds")


def test_an_event_moves_its_series_and_no_other():
    def sample(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = sample("flashsale_orders_total", status="paid", mode="async")
    other = sample("flashsale_orders_total", status="paid", mode="sync")
    paid_count = sample("flashsale_order_accepted_to_paid_seconds_count")
    in_60s = sample("flashsale_order_accepted_to_paid_seconds_bucket", le="60.0")
    in_30s = sample("flashsale_order_accepted_to_paid_seconds_bucket", le="30.0")

    metrics.order_reached("paid", "async")
    metrics.order_paid_after(42.0)

    assert sample("flashsale_orders_total", status="paid", mode="async") == before + 1
    assert sample("flashsale_orders_total", status="paid", mode="sync") == other
    assert sample("flashsale_order_accepted_to_paid_seconds_count") == paid_count + 1
    assert sample("flashsale_order_accepted_to_paid_seconds_bucket", le="60.0") == in_60s + 1
    assert sample("flashsale_order_accepted_to_paid_seconds_bucket", le="30.0") == in_30s  # 42 s is over


def test_the_sweepers_gauges_hold_the_last_sample():
    metrics.queue_sampled(waiting=12, in_flight=3, dead_lettered=1)
    metrics.backlog_sampled(oldest_waiting_seconds=None, unpublished=2)

    assert REGISTRY.get_sample_value("flashsale_sqs_waiting_messages") == 12
    assert REGISTRY.get_sample_value("flashsale_sqs_in_flight_messages") == 3
    assert REGISTRY.get_sample_value("flashsale_sqs_dead_lettered_messages") == 1
    assert REGISTRY.get_sample_value("flashsale_oldest_waiting_order_age_seconds") == 0  # none waits
    assert REGISTRY.get_sample_value("flashsale_outbox_unpublished_orders") == 2
