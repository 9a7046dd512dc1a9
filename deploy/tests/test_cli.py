"""`python -m deploy` against a local moto server: change sets with streamed events, status, scale, teardown.

moto's CloudFormation cannot create the whole stack (Fargate services behind an ALB, a Lambda from an
image, RDS...), so the tests deploy the stack's queues through CloudFormation, with the outputs the
command reads, and make the ECS services, the scalable target and an alarm with direct boto3 calls.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from deploy import cli
from loadtests.drain.results import DrainRun
from loadtests.study.results import Environment, Parameters, StudyResults


def queues_template(name: str) -> dict:
    return {
        "Resources": {
            "Dlq": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": f"{name}-payments-dlq"}},
            "Payments": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "QueueName": f"{name}-payments",
                    "VisibilityTimeout": 210,
                    "RedrivePolicy": {
                        "deadLetterTargetArn": {"Fn::GetAtt": ["Dlq", "Arn"]},
                        "maxReceiveCount": 5,
                    },
                },
            },
        },
        "Outputs": {
            "ClusterName": {"Value": name},
            "WebService": {"Value": f"{name}-web"},
            "WorkerService": {"Value": f"{name}-worker"},
            "SweeperService": {"Value": f"{name}-sweeper"},
            "QueueUrl": {"Value": {"Ref": "Payments"}},
            "DlqUrl": {"Value": {"Ref": "Dlq"}},
            "WorkerBacklogTarget": {"Value": "400"},
        },
    }


@pytest.fixture
def deployed(deploy_env, aws, app_name, capsys) -> str:
    """A stack in moto with the outputs the command reads, plus services beside it.

    CreateStack, not the command's change sets: moto's ExecuteChangeSet leaves a stack without outputs.
    """
    aws("cloudformation").create_stack(StackName=app_name, TemplateBody=json.dumps(queues_template(app_name)))
    ecs = aws("ecs")
    ecs.create_cluster(clusterName=app_name)
    ecs.register_task_definition(
        family=f"{app_name}-task", containerDefinitions=[{"name": "c", "image": "i", "memory": 512}]
    )
    for role, count in (("web", 2), ("worker", 3), ("sweeper", 1)):
        name = f"{app_name}-{role}"
        ecs.create_service(
            cluster=app_name, serviceName=name, taskDefinition=f"{app_name}-task", desiredCount=count
        )
    aws("application-autoscaling").register_scalable_target(
        ServiceNamespace="ecs", ResourceId=f"service/{app_name}/{app_name}-worker",
        ScalableDimension="ecs:service:DesiredCount", MinCapacity=1, MaxCapacity=20,
    )  # fmt: skip
    aws("cloudwatch").put_metric_alarm(
        AlarmName=f"{app_name}-dlq-not-empty", MetricName="ApproximateNumberOfMessagesVisible",
        Namespace="AWS/SQS", Statistic="Maximum", Period=60, EvaluationPeriods=1, Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )  # fmt: skip
    capsys.readouterr()
    return app_name


def test_a_new_stack_is_created_by_change_set_with_its_events_streamed(deploy_env, app_name, capsys):
    status = cli.apply(app_name, queues_template(app_name), {}, dry_run=False)

    out = capsys.readouterr().out
    assert status == "CREATE_COMPLETE"
    assert "change set" in out and "Add     AWS::SQS::Queue" in out
    assert "CREATE_COMPLETE" in out and "Payments" in out  # the streamed events


def test_a_dry_run_prints_the_change_set_and_applies_nothing(deploy_env, aws, app_name, capsys):
    assert cli.apply(app_name, queues_template(app_name), {}, dry_run=True) == "DRY_RUN"

    out = capsys.readouterr().out
    assert "Add     AWS::SQS::Queue" in out and "dry run: nothing applied" in out
    names = [s["StackName"] for s in aws("cloudformation").list_stacks()["StackSummaries"]]
    statuses = {
        s["StackStatus"]
        for s in aws("cloudformation").list_stacks()["StackSummaries"]
        if s["StackName"] == app_name
    }
    assert app_name not in names or statuses <= {"REVIEW_IN_PROGRESS", "DELETE_COMPLETE"}


def test_status_shows_services_scaling_queues_and_alarms(deployed, aws, capsys):
    queue_url = cli.outputs(deployed)["QueueUrl"]
    aws("sqs").send_message(QueueUrl=queue_url, MessageBody="job")

    assert cli.main(["status", "--name", deployed]) == 0

    out = capsys.readouterr().out
    assert f"stack {deployed}: CREATE_COMPLETE" in out
    assert f"service {deployed}-worker" in out and "desired   3" in out
    assert "worker scaling: min 1  max 20  backlog target 400/task" in out
    assert "waiting      1" in out
    assert f"alarm {deployed}-dlq-not-empty" in out


def test_scale_sets_the_worker_autoscaling_bounds(deployed, aws, capsys):
    assert cli.main(["scale", "--name", deployed, "--min", "5", "--max", "40"]) == 0

    (target,) = aws("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="ecs", ResourceIds=[f"service/{deployed}/{deployed}-worker"]
    )["ScalableTargets"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (5, 40)


def test_teardown_needs_yes_then_deletes_the_stack_streaming_events(deployed, aws, capsys):
    with pytest.raises(SystemExit, match="add --yes"):
        cli.main(["teardown", "--name", deployed])

    assert cli.main(["teardown", "--name", deployed, "--yes", "--poll", "0.2"]) == 0

    assert "DELETE_COMPLETE" in capsys.readouterr().out
    assert not cli.stack_exists(deployed)
    assert aws("sqs").list_queues(QueueNamePrefix=f"{deployed}-payments").get("QueueUrls", []) == []


@pytest.mark.parametrize("step", ["synth", "build", "deploy", "migrate", "manage", "status", "scale",
                                  "teardown", "recommend", "cost"])  # fmt: skip
def test_every_step_documents_itself(step, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([step, "--help"])

    assert exit_.value.code == 0
    assert "usage: python -m deploy" in capsys.readouterr().out


def test_build_dry_run_prints_the_docker_commands(deploy_env, capsys):
    assert cli.main(["build", "--tag", "v1", "--repository", "shop-dry", "--dry-run"]) == 0

    out = capsys.readouterr().out
    assert "docker build --platform linux/amd64 -f deploy/Dockerfile" in out
    assert "docker push" in out and ":v1" in out


# --- recommend --report: the lab's results.json, written by the lab's own dataclasses -----------------


def drain_run(workers: int, provider_limit: int, rate: float, *, task_errors: int = 0) -> DrainRun:
    ideal = min(workers, provider_limit or workers) / 3.0
    return DrainRun(
        name=f"drain-w{workers}-l{provider_limit}", workers=workers, provider_limit=provider_limit,
        latency=3.0, orders=workers * 8, paid=workers * 8, failed=0, charged_twice=0, not_charged=0,
        task_errors=task_errors, seconds=workers * 8 / rate, rate=rate, ideal_rate=ideal,
        efficiency=rate / ideal, overhead_ms=60.0, provider_peak=min(workers, provider_limit or workers),
        worker_rss_mb=80.0, cpu_seconds={"worker": 2.0, "machine": 9.0, "wall": 25.0},
    )  # fmt: skip


def blank(cls: type) -> object:
    """Placeholders for the run's parameters and environment: recommend reads neither."""
    empty = {"list": [], "dict": {}, "int": 0, "float": 0.0, "bool": False}
    return cls(**{f.name: empty.get(str(f.type).split("[")[0], "") for f in dataclasses.fields(cls)})


@pytest.fixture
def lab_report(tmp_path) -> Path:
    """A report folder whose results.json the lab's writer made: three drain runs, one usable."""
    results = StudyResults(
        parameters=blank(Parameters),
        environment=blank(Environment),
        drain=[
            drain_run(20, 0, 6.2),  # the workers alone: this one
            drain_run(20, 1, 0.33),  # the provider's limit, not the workers'
            drain_run(200, 0, 66.0, task_errors=2),  # a run with errors does not count
        ],
    )
    results.dump(tmp_path / "results.json")
    return tmp_path


def test_recommend_takes_the_per_thread_rate_from_a_lab_report(lab_report, capsys):
    assert cli.main(["recommend", "--report", str(lab_report), "--concurrency", "20", "--rate", "60"]) == 0

    out = capsys.readouterr().out
    assert f"per worker thread: 0.310 orders/s (measured: drain-w20-l0 in {lab_report})" in out
    assert "per task: 20 threads × 0.310 = 6.20 orders/s" in out
    assert "60 orders/s needs 10 worker tasks" in out


def test_recommend_refuses_a_report_of_a_schema_it_cannot_read(lab_report):
    (lab_report / "results.json").write_text(json.dumps({"schema": 99}))

    with pytest.raises(SystemExit, match="results schema 99"):
        cli.main(["recommend", "--report", str(lab_report)])
