"""`python -m deploy` against a local moto server: change sets with streamed events, status, scale, teardown.

moto's CloudFormation cannot create the whole stack (Fargate services behind an ALB, a Lambda from an
image, RDS...), so the tests deploy the stack's queues through CloudFormation, with the outputs the
command reads, and make the ECS services, the scalable target and an alarm with direct boto3 calls.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
from pathlib import Path

import pytest

from deploy import cli
from sizing.results import DrainRun, Environment, Parameters, StudyResults


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
            "RelayService": {"Value": f"{name}-relay"},
            "QueueUrl": {"Value": {"Ref": "Payments"}},
            "DlqUrl": {"Value": {"Ref": "Dlq"}},
            "WorkerBacklogTarget": {"Value": "400"},
        },
    }


def with_parameters(template: dict, *names: str) -> dict:
    """The template declaring `names` as String parameters (values given at create_stack)."""
    return {**template, "Parameters": {name: {"Type": "String"} for name in names}}


@pytest.fixture
def deployed(deploy_env, aws, app_name, capsys) -> str:
    """A stack in moto with the outputs the command reads, plus services beside it.

    CreateStack, not the command's change sets: moto's ExecuteChangeSet leaves a stack without outputs.
    """
    template = queues_template(app_name)
    template["Outputs"]["DatabaseProxyEndpoint"] = {"Value": "flashsale-db.proxy-abc.rds.amazonaws.com"}
    aws("cloudformation").create_stack(
        StackName=app_name,
        TemplateBody=json.dumps(with_parameters(template, "DomainName", "AdminPath")),
        Parameters=[
            {"ParameterKey": "DomainName", "ParameterValue": "shop.example.com"},
            {"ParameterKey": "AdminPath", "ParameterValue": "staff-7f3a9c/"},
        ],
    )
    ecs = aws("ecs")
    ecs.create_cluster(clusterName=app_name)
    ecs.register_task_definition(
        family=f"{app_name}-task", containerDefinitions=[{"name": "c", "image": "i", "memory": 512}]
    )
    for role, count in (("web", 2), ("worker", 3), ("relay", 2), ("sweeper", 1)):
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
    assert f"service {deployed}-relay" in out
    assert "worker scaling: min 1  max 20  backlog target 400/task" in out
    assert "waiting      1" in out
    assert f"alarm {deployed}-dlq-not-empty" in out
    assert "admin https://shop.example.com/staff-7f3a9c/" in out
    assert "database through RDS Proxy flashsale-db.proxy-abc.rds.amazonaws.com" in out


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


# --- one-off tasks: migrate on its own task definition, manage on the ops one ---------------------


@pytest.fixture
def one_offs(deploy_env, aws, app_name, network) -> dict[str, str]:
    """A stack whose outputs name a migrate and an ops task definition, as the real one does."""
    ecs = aws("ecs")
    ecs.create_cluster(clusterName=app_name)
    arns = {
        role: ecs.register_task_definition(
            family=f"{app_name}-{role}", requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
            cpu="256", memory="512", containerDefinitions=[{"name": role, "image": "i", "memory": 512}],
        )["taskDefinition"]["taskDefinitionArn"]
        for role in ("migrate", "ops")
    }  # fmt: skip
    outputs = {
        "ClusterName": app_name,
        "MigrateTaskDefinition": arns["migrate"],
        "OpsTaskDefinition": arns["ops"],
        "TaskSubnets": network["ECS_SUBNETS"],
        "TaskSecurityGroup": network["ECS_SECURITY_GROUPS"],
    }
    template = queues_template(app_name)
    template["Outputs"] = {k: {"Value": v} for k, v in outputs.items()}
    aws("cloudformation").create_stack(StackName=app_name, TemplateBody=json.dumps(template))
    return arns


def started(aws, cluster: str) -> list[dict]:
    ecs = aws("ecs")
    return ecs.describe_tasks(cluster=cluster, tasks=ecs.list_tasks(cluster=cluster)["taskArns"])["tasks"]


def test_manage_runs_on_the_ops_task_definition(one_offs, aws, app_name, capsys):
    assert cli.main(["manage", "--name", app_name, "--no-wait", "--", "dlq", "--redrive"]) == 0

    (task,) = started(aws, app_name)
    assert task["taskDefinitionArn"] == one_offs["ops"]
    assert task["overrides"]["containerOverrides"] == [
        {"name": "ops", "command": ["python", "manage.py", "dlq", "--redrive"]}
    ]
    assert "manage.py dlq --redrive" in capsys.readouterr().out


def test_migrations_keep_the_migrate_task_definition(one_offs, aws, app_name):
    assert cli.run_task(app_name, None, wait=False) == 0

    (task,) = started(aws, app_name)
    assert task["taskDefinitionArn"] == one_offs["migrate"]


# --- deploy: the admin's path, a parameter a new stack needs ---------------------------------------
NEW_STACK_FLAGS = [
    "--tag", "v1", "--certificate-arn", "arn:aws:acm:us-east-1:123456789012:certificate/x",
    "--domain", "shop.example.com", "--provider-url", "https://api.processor.example",
    "--provider-key-arn", "arn:aws:secretsmanager:us-east-1:123456789012:secret:key-AbCdEf",
]  # fmt: skip
PARAMETERS = ["ImageRepository", "ImageTag", "MigrationImageTag", "CertificateArn", "DomainName",
              "PaymentProviderUrl", "PaymentApiKeySecretArn", "Consumer"]  # fmt: skip


@pytest.fixture
def applied(monkeypatch, app_name) -> list[dict]:
    """`deploy` without the CDK: a small template for the synth, and apply's parameters recorded."""
    template = with_parameters(queues_template(app_name), *PARAMETERS, "AdminPath")
    fake_stack = types.ModuleType("deploy.stack")
    fake_stack.synth = lambda shop, name: template  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "deploy.stack", fake_stack)
    calls: list[dict] = []

    def apply(name, template, parameters, *, dry_run):
        calls.append(parameters)
        return "DRY_RUN"

    monkeypatch.setattr(cli, "apply", apply)
    return calls


def test_a_new_stack_needs_the_admins_path(deploy_env, app_name, applied):
    with pytest.raises(SystemExit, match=r"a new stack needs: AdminPath \(--admin-path\)"):
        cli.main(["deploy", "--name", app_name, *NEW_STACK_FLAGS, "--dry-run"])

    assert applied == []


def test_a_new_stack_gets_the_admins_path_as_a_parameter(deploy_env, app_name, applied):
    flags = [*NEW_STACK_FLAGS, "--admin-path", "staff-7f3a9c/", "--dry-run"]

    assert cli.main(["deploy", "--name", app_name, *flags]) == 0

    (parameters,) = applied
    assert parameters["AdminPath"] == "staff-7f3a9c/"
    assert parameters["DomainName"] == "shop.example.com" and parameters["ImageTag"] == "v1"


@pytest.fixture
def stack_without_admin_path(deploy_env, aws, app_name) -> str:
    """A stack made before the template had AdminPath: every other parameter has a value."""
    aws("cloudformation").create_stack(
        StackName=app_name,
        TemplateBody=json.dumps(with_parameters(queues_template(app_name), *PARAMETERS)),
        Parameters=[{"ParameterKey": k, "ParameterValue": "x"} for k in PARAMETERS],
    )
    return app_name


def test_an_update_keeps_every_parameter_but_needs_the_admins_path_once(stack_without_admin_path, applied):
    name = stack_without_admin_path
    with pytest.raises(SystemExit, match="has no AdminPath yet: pass --admin-path"):
        cli.main(["deploy", "--name", name, "--tag", "v2", "--dry-run"])
    assert applied == []

    assert (
        cli.main(["deploy", "--name", name, "--tag", "v2", "--admin-path", "staff-7f3a9c/", "--dry-run"]) == 0
    )

    migrate_first, services = applied
    # Step 1 already applies the new template: the new parameter needs its value there too.
    assert migrate_first["AdminPath"] == services["AdminPath"] == "staff-7f3a9c/"
    assert migrate_first["DomainName"] is None and services["DomainName"] is None  # UsePreviousValue
    assert (migrate_first["ImageTag"], migrate_first["MigrationImageTag"]) == (None, "v2")
    assert (services["ImageTag"], services["MigrationImageTag"]) == ("v2", "v2")


def test_once_the_stack_has_the_admins_path_an_update_keeps_it(deploy_env, aws, app_name, applied):
    aws("cloudformation").create_stack(
        StackName=app_name,
        TemplateBody=json.dumps(with_parameters(queues_template(app_name), *PARAMETERS, "AdminPath")),
        Parameters=[{"ParameterKey": k, "ParameterValue": "x"} for k in [*PARAMETERS, "AdminPath"]],
    )

    assert cli.main(["deploy", "--name", app_name, "--tag", "v2", "--dry-run"]) == 0

    assert [call["AdminPath"] for call in applied] == [None, None]  # UsePreviousValue


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
