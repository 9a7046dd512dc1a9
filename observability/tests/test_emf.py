"""EMF lines are valid embedded metric format and aggregate as documented (observability/emf.py).

The witness is the format's own JSON schema, transcribed from AWS's specification, plus the rules
a schema cannot say (every named dimension and metric is a top-level member; at most 100 values).
"""

import json

import jsonschema
import pytest

from observability import metrics
from observability.emf import MAX_VALUES, Emf

# https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
EMF_SCHEMA = {
    "type": "object",
    "required": ["_aws"],
    "properties": {
        "_aws": {
            "type": "object",
            "required": ["Timestamp", "CloudWatchMetrics"],
            "properties": {
                "Timestamp": {"type": "integer", "minimum": 0},
                "CloudWatchMetrics": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["Namespace", "Dimensions", "Metrics"],
                        "properties": {
                            "Namespace": {"type": "string", "minLength": 1, "maxLength": 1024},
                            "Dimensions": {
                                "type": "array",
                                "items": {
                                    "type": "array",
                                    "maxItems": 30,
                                    "items": {"type": "string", "minLength": 1, "maxLength": 250},
                                },
                            },
                            "Metrics": {
                                "type": "array",
                                "maxItems": 100,
                                "items": {
                                    "type": "object",
                                    "required": ["Name"],
                                    "properties": {
                                        "Name": {"type": "string", "minLength": 1, "maxLength": 1024},
                                        "Unit": {
                                            "enum": ["Seconds", "Milliseconds", "Count", "None", "Percent"]
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        }
    },
}


def assert_valid_emf(line: str) -> dict:
    assert "\n" not in line  # one log event per line
    document = json.loads(line)
    jsonschema.validate(document, EMF_SCHEMA)
    for directive in document["_aws"]["CloudWatchMetrics"]:
        for dimension_set in directive["Dimensions"]:
            for name in dimension_set:
                assert isinstance(document[name], str), f"dimension {name} must be a top-level string"
        for metric in directive["Metrics"]:
            value = document[metric["Name"]]
            values = value if isinstance(value, list) else [value]
            assert values and len(values) <= MAX_VALUES
            assert all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    return document


@pytest.fixture
def emf_lines(monkeypatch):
    lines: list[str] = []
    recorder = Emf("FlashSale", write=lines.append, clock=lambda: 1_700_000_000.5)
    monkeypatch.setattr(metrics, "_emf", recorder)
    return recorder, lines


def test_counters_are_summed_per_dimension_set_into_one_line_each(emf_lines):
    recorder, lines = emf_lines
    for _ in range(3):
        metrics.order_reached("accepted", "async")
    metrics.order_reached("accepted", "sync")

    recorder.flush()

    documents = [assert_valid_emf(line) for line in lines]
    by_mode = {d["Mode"]: d for d in documents}
    assert by_mode["async"]["OrdersAccepted"] == 3 and by_mode["sync"]["OrdersAccepted"] == 1
    assert by_mode["async"]["_aws"]["Timestamp"] == 1_700_000_000_500
    assert by_mode["async"]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Mode"]]
    recorder.flush()
    assert len(lines) == 2  # nothing new, nothing written


def test_timings_go_out_as_value_arrays_of_at_most_100(emf_lines):
    recorder, lines = emf_lines
    metrics.order_reached("paid", "async")
    for n in range(250):
        metrics.order_paid_after(float(n))
    recorder.flush()

    documents = [assert_valid_emf(line) for line in lines]
    timings = [v for d in documents for v in d.get("AcceptedToPaidLatency", [])]
    assert sorted(timings) == [float(n) for n in range(250)]  # every sample, once
    assert sum(d.get("OrdersPaid", 0) for d in documents) == 1  # the count, once


def test_the_sweepers_gauges_are_one_line_per_pass_with_the_last_values(emf_lines):
    recorder, lines = emf_lines
    metrics.queue_sampled(waiting=5, in_flight=2, dead_lettered=0)
    metrics.queue_sampled(waiting=7, in_flight=3, dead_lettered=1)
    metrics.backlog_sampled(oldest_waiting_seconds=None, unpublished=4)
    recorder.flush()

    (document,) = [assert_valid_emf(line) for line in lines]
    assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [[]]
    assert (document["SqsWaiting"], document["SqsInFlight"], document["SqsDeadLettered"]) == (7, 3, 1)
    assert (document["OldestWaitingOrderAge"], document["OutboxUnpublished"]) == (0, 4)


def test_every_emf_metric_name_the_code_emits_is_listed(emf_lines):
    """The dashboard test reads EMF_METRICS: it must be every name these calls write."""
    recorder, lines = emf_lines
    metrics.order_reached("accepted", "async")
    metrics.order_reached("paid", "async")
    metrics.order_reached("failed", "sync")
    metrics.order_paid_after(3)
    metrics.checkout_answered("async", 0.01)
    metrics.charge_attempted("charged", 0.2)
    metrics.charge_finished("paid")
    metrics.idempotent_replay("checkout-async")
    metrics.throttled("checkout")
    metrics.sync_checkout_queue("queued")
    metrics.queue_sampled(waiting=1, in_flight=0, dead_lettered=0)
    metrics.backlog_sampled(oldest_waiting_seconds=2.5, unpublished=0)
    metrics.relayed(published=9, refused=1, waited=[0.02] * 10)
    recorder.flush()

    names = {
        m["Name"] for line in lines for m in assert_valid_emf(line)["_aws"]["CloudWatchMetrics"][0]["Metrics"]
    }
    assert names == set(metrics.EMF_METRICS)


def test_emf_is_off_unless_enabled():
    assert metrics.emf() is None  # test settings: METRICS_EMF off, as locally
