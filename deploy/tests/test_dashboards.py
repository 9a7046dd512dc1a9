"""The dashboards chart only metrics the code defines: Grafana's (Prometheus) and the stack's
CloudWatch dashboard (the shop's EMF metrics and SQS's own)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY

from observability import metrics

GRAFANA = Path(__file__).resolve().parents[1] / "dashboards" / "grafana.json"
SERIES = re.compile(r"\bflashsale_[a-z_]+")
SQS_METRICS = {
    "ApproximateNumberOfMessagesVisible",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateAgeOfOldestMessage",
}


SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def prometheus_series() -> set[str]:
    """Every series name the code's metrics expose (a labelled metric has no sample until used)."""
    return {family.name + suffix for family in REGISTRY.collect() for suffix in SUFFIXES.get(family.type, ())}


def test_every_series_the_grafana_dashboard_charts_is_one_the_code_defines():
    board = json.loads(GRAFANA.read_text())
    charted = {
        name
        for panel in board["panels"]
        for target in panel["targets"]
        for name in SERIES.findall(target["expr"])
    }
    defined = prometheus_series()

    assert len(charted) >= 12
    assert charted <= defined, f"charted but not defined: {sorted(charted - defined)}"
    # ... and every metric of ours is on it (histograms by their buckets).
    ours = {f.name for f in REGISTRY.collect() if f.name.startswith("flashsale_")}
    assert {name.removesuffix("_total").removesuffix("_bucket") for name in charted} >= ours


def dashboard_metrics(synthesized: dict) -> list[list]:
    (body,) = [
        r["Properties"]["DashboardBody"]
        for r in synthesized["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Dashboard"
    ]
    # A Fn::Join of strings and references (queue names): a reference becomes a placeholder string.
    parts = body["Fn::Join"][1]
    text = "".join(part if isinstance(part, str) else "REF" for part in parts)
    widgets = json.loads(text)["widgets"]
    return [metric for widget in widgets for metric in widget["properties"]["metrics"]]


def test_every_metric_the_cloudwatch_dashboard_charts_is_emitted(synthesized):
    charted = dashboard_metrics(synthesized)
    ours = {m[1] for m in charted if m[0] == "FlashSale"}
    sqs = {m[1] for m in charted if m[0] == "AWS/SQS"}
    namespaces = {m[0] for m in charted if m[0] != "."}

    assert namespaces <= {"FlashSale", "AWS/SQS"}
    assert ours <= set(metrics.EMF_METRICS), (
        f"charted but never emitted: {sorted(ours - set(metrics.EMF_METRICS))}"
    )
    assert ours == set(metrics.EMF_METRICS)  # and every EMF metric is on it
    assert sqs <= SQS_METRICS and sqs


def test_the_tasks_emit_emf_and_json_logs_and_keep_metrics_off_the_load_balancer(synthesized):
    containers = {
        c["Name"]: c
        for r in synthesized["Resources"].values()
        if r["Type"] == "AWS::ECS::TaskDefinition"
        for c in r["Properties"]["ContainerDefinitions"]
    }
    for name in ("web", "worker", "sweeper"):
        env = {e["Name"]: e["Value"] for e in containers[name]["Environment"]}
        assert (env["METRICS_EMF"], env["LOG_FORMAT"], env["METRICS_EMF_NAMESPACE"]) == (
            "1",
            "json",
            "FlashSale",
        )
    ports = {p["ContainerPort"] for p in containers["web"].get("PortMappings", [])}
    assert "9100" not in json.dumps(
        [r for r in synthesized["Resources"].values() if "ElasticLoadBalancing" in r["Type"]]
    )
    assert ports == {8000}  # only the web port is mapped (the ALB's target)
    ingress = [
        r["Properties"]
        for r in synthesized["Resources"].values()
        if r["Type"] in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroup")
    ]
    assert '"FromPort": 9100' not in json.dumps(ingress) and '"ToPort": 9100' not in json.dumps(ingress)
