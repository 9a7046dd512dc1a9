"""`python -m deploy.ecs` against a moto server: queues, task definitions, services, worker scaling."""

from __future__ import annotations

import json

import pytest

from deploy import ecs

ACCOUNT = "123456789012"
SECRET_KEY_ARN = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:flashsale/django-secret-key-AbCdEf"
DATABASE_URL_ARN = f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/flashsale/database-url"
API_KEY_ARN = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:flashsale/provider-key"
TARGET_GROUP_ARN = (
    f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:targetgroup/flashsale-web/0123456789abcdef"
)


def task_env(app: str) -> dict[str, str]:
    """Return the ECS_* variables a deploy shell would export for the task definitions."""
    return {
        "ECS_APP": app,
        "ECS_IMAGE": f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/flashsale:abc123",
        "ECS_EXECUTION_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/flashsale-execution",
        "ECS_TASK_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/flashsale-task",
        "ECS_SECRET_KEY_ARN": SECRET_KEY_ARN,
        "ECS_DATABASE_URL_ARN": DATABASE_URL_ARN,
        "ECS_PAYMENT_API_KEY_ARN": API_KEY_ARN,
        "ECS_QUEUE_URL": f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/{app}-payments",
        "ECS_DLQ_URL": f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/{app}-payments-dlq",
        "ECS_ALLOWED_HOSTS": "shop.example.com,www.shop.example.com",
        "ECS_PAYMENT_PROVIDER_URL": "https://api.payments.example.com",
    }


@pytest.fixture
def service_env(app_name: str, network: dict[str, str]) -> dict[str, str]:
    """Return what a deploy shell would export for `deploy`: the task variables, cluster and network."""
    return {**task_env(app_name), "ECS_CLUSTER": f"{app_name}-cluster", **network}


def settings_for(app: str, **changes) -> ecs.TaskSettings:
    env = task_env(app)
    fields = {
        "app": app,
        "image": env["ECS_IMAGE"],
        "region": "us-east-1",
        "execution_role_arn": env["ECS_EXECUTION_ROLE_ARN"],
        "task_role_arn": env["ECS_TASK_ROLE_ARN"],
        "secret_key_arn": SECRET_KEY_ARN,
        "database_url_arn": DATABASE_URL_ARN,
        "payment_api_key_arn": API_KEY_ARN,
        "queue_url": env["ECS_QUEUE_URL"],
        "dlq_url": env["ECS_DLQ_URL"],
        "allowed_hosts": env["ECS_ALLOWED_HOSTS"],
        "payment_provider_url": env["ECS_PAYMENT_PROVIDER_URL"],
    }
    return ecs.TaskSettings(**{**fields, **changes})


def container_env(container: dict) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container["environment"]}


def container_secrets(container: dict) -> dict[str, str]:
    return {item["name"]: item["valueFrom"] for item in container["secrets"]}


def services_by_name(aws, cluster: str, app: str) -> dict[str, dict]:
    names = [ecs.family(app, role) for role in ecs.ROLES]
    found = aws("ecs").describe_services(cluster=cluster, services=names)["services"]
    return {s["serviceName"]: s for s in found}


# --- queues -------------------------------------------------------------------------------------


def test_queues_creates_the_queue_with_a_redrive_policy_and_converges_on_rerun(cli, aws, app_name):
    queue = f"{app_name}-payments"

    first = json.loads(cli("queues", "--queue-name", queue, "--visibility-timeout", "210").stdout)
    sqs = aws("sqs")
    sqs.set_queue_attributes(QueueUrl=first["queue"], Attributes={"VisibilityTimeout": "1"})
    second = json.loads(cli("queues", "--queue-name", queue, "--visibility-timeout", "210").stdout)

    assert second == first
    assert first["queue"].endswith(f"/{queue}") and first["dlq"].endswith(f"/{queue}-dlq")
    assert sorted(sqs.list_queues(QueueNamePrefix=queue)["QueueUrls"]) == sorted(
        [first["queue"], first["dlq"]]
    )
    main = sqs.get_queue_attributes(QueueUrl=first["queue"], AttributeNames=["All"])["Attributes"]
    assert main["VisibilityTimeout"] == "210"  # restored by the rerun
    redrive = json.loads(main["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == first["dlq_arn"]
    assert int(redrive["maxReceiveCount"]) == 5
    dlq = sqs.get_queue_attributes(QueueUrl=first["dlq"], AttributeNames=["All"])["Attributes"]
    assert dlq["MessageRetentionPeriod"] == str(14 * 24 * 3600)


def test_queues_takes_names_and_limits_from_ecs_variables(cli, aws, app_name):
    result = json.loads(
        cli(
            "queues",
            ECS_QUEUE_NAME=f"{app_name}-q",
            ECS_DLQ_NAME=f"{app_name}-dead",
            ECS_MAX_RECEIVE_COUNT="3",
        ).stdout
    )

    assert result["dlq"].endswith(f"/{app_name}-dead")
    attributes = aws("sqs").get_queue_attributes(QueueUrl=result["queue"], AttributeNames=["RedrivePolicy"])
    assert int(json.loads(attributes["Attributes"]["RedrivePolicy"])["maxReceiveCount"]) == 3


# --- render -------------------------------------------------------------------------------------


def test_render_prints_three_fargate_definitions_with_commands_env_and_secrets(cli, app_name):
    rendered = json.loads(cli("render", "--concurrency", "8", **task_env(app_name)).stdout)

    assert sorted(rendered) == ["sweeper", "web", "worker"]
    containers = {role: d["containerDefinitions"][0] for role, d in rendered.items()}
    for role, definition in rendered.items():
        assert definition["family"] == f"{app_name}-{role}"
        assert definition["requiresCompatibilities"] == ["FARGATE"]
        assert definition["networkMode"] == "awsvpc"
        container = containers[role]
        assert container["image"].endswith("flashsale:abc123")
        assert container["logConfiguration"]["logDriver"] == "awslogs"
        assert container["logConfiguration"]["options"]["awslogs-group"] == f"/ecs/{app_name}"
        env = container_env(container)
        assert env["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
        assert env["SQS_QUEUE_URL"].endswith(f"/{app_name}-payments")
        assert env["SQS_DLQ_URL"].endswith(f"/{app_name}-payments-dlq")
        assert env["SQS_QUEUE_NAME"] == f"{app_name}-payments"  # the name the settings route tasks by
        assert "SQS_ENDPOINT_URL" not in env
        assert "DJANGO_SECRET_KEY" not in env and "DATABASE_URL" not in env
        assert container_secrets(container) == {
            "DJANGO_SECRET_KEY": SECRET_KEY_ARN,
            "DATABASE_URL": DATABASE_URL_ARN,
            "PAYMENT_PROVIDER_API_KEY": API_KEY_ARN,
        }
        # One definition of each command (config.processes); the environment configures it.
        assert container["command"] == ["python", "-m", "config.processes", role]

    assert containers["web"]["portMappings"] == [{"containerPort": 8000, "protocol": "tcp"}]
    check = containers["web"]["healthCheck"]["command"]
    assert check[:3] == ["CMD", "python", "-c"]
    assert "/healthz" in check[3]
    assert container_env(containers["worker"])["WORKER_CONCURRENCY"] == "8"
    assert containers["worker"]["stopTimeout"] == 120
    assert container_env(containers["sweeper"])["SWEEP_INTERVAL_SECONDS"] == "15"
    assert "healthCheck" not in containers["worker"] and "portMappings" not in containers["sweeper"]


def test_render_refuses_a_local_sqs_endpoint_and_names_missing_options(cli, app_name):
    local = cli(
        "render", "--env", "SQS_ENDPOINT_URL=http://127.0.0.1:9324", check=False, **task_env(app_name)
    )
    env = task_env(app_name)
    del env["ECS_IMAGE"]
    missing = cli("render", check=False, **env)

    assert local.returncode == 1 and "SQS_ENDPOINT_URL" in local.stderr
    assert missing.returncode == 2 and "--image" in missing.stderr


def test_extra_secrets_and_env_are_added_but_never_both(app_name):
    settings = settings_for(
        app_name, extra_env={"LOG_LEVEL": "WARNING"}, extra_secrets={"SENTRY_DSN": SECRET_KEY_ARN + "-dsn"}
    )

    web = ecs.task_definitions(settings)["web"]["containerDefinitions"][0]

    assert container_secrets(web)["SENTRY_DSN"] == SECRET_KEY_ARN + "-dsn"
    assert container_env(web)["LOG_LEVEL"] == "WARNING"
    with pytest.raises(ValueError, match="DATABASE_URL"):
        ecs.task_definitions(settings_for(app_name, extra_env={"DATABASE_URL": "postgres://leak"}))


# --- register -----------------------------------------------------------------------------------


def test_register_stores_the_definitions_and_their_log_group(aws, app_name):
    settings = settings_for(app_name, concurrency=50)

    first = ecs.register(aws("ecs"), aws("logs"), settings, log_retention_days=14)
    second = ecs.register(aws("ecs"), aws("logs"), settings, log_retention_days=14)

    assert [arn.rsplit(":", 1)[1] for arn in first.values()] == ["1", "1", "1"]
    assert [arn.rsplit(":", 1)[1] for arn in second.values()] == ["2", "2", "2"]
    stored = {
        role: aws("ecs").describe_task_definition(taskDefinition=arn)["taskDefinition"]
        for role, arn in second.items()
    }
    worker = stored["worker"]["containerDefinitions"][0]
    assert worker["command"] == ["python", "-m", "config.processes", "worker"]
    assert container_env(worker)["WORKER_CONCURRENCY"] == "50"
    assert container_secrets(worker) == {
        "DJANGO_SECRET_KEY": SECRET_KEY_ARN,
        "DATABASE_URL": DATABASE_URL_ARN,
        "PAYMENT_PROVIDER_API_KEY": API_KEY_ARN,
    }
    assert stored["web"]["containerDefinitions"][0]["healthCheck"]["command"][0] == "CMD"
    assert {d["cpu"] for d in stored.values()} == {"256", "512"}
    assert stored["web"]["executionRoleArn"].endswith("role/flashsale-execution")
    assert stored["web"]["taskRoleArn"].endswith("role/flashsale-task")
    groups = aws("logs").describe_log_groups(logGroupNamePrefix=f"/ecs/{app_name}")["logGroups"]
    assert [(g["logGroupName"], g.get("retentionInDays")) for g in groups] == [(f"/ecs/{app_name}", 14)]


# --- deploy and scale-workers -------------------------------------------------------------------


def test_deploy_creates_the_services_then_updates_them_in_place(cli, aws, app_name, service_env):
    env = service_env
    cluster = env["ECS_CLUSTER"]
    cli("cluster", **env)

    first = json.loads(
        cli(
            "deploy",
            "--worker-count",
            "3",
            "--concurrency",
            "8",
            "--target-group-arn",
            TARGET_GROUP_ARN,
            **env,
        ).stdout
    )
    created = services_by_name(aws, cluster, app_name)
    second = json.loads(cli("deploy", "--target-group-arn", TARGET_GROUP_ARN, **env).stdout)
    updated = services_by_name(aws, cluster, app_name)

    assert {r["action"] for r in first["services"].values()} == {"created"}
    assert {r["action"] for r in second["services"].values()} == {"updated"}
    assert len(aws("ecs").list_services(cluster=cluster)["serviceArns"]) == 3
    web, worker, sweeper = (updated[ecs.family(app_name, role)] for role in ecs.ROLES)
    assert worker["desiredCount"] == 3  # kept: the second deploy gave no count
    assert web["desiredCount"] == 2 and sweeper["desiredCount"] == 1
    assert web["launchType"] == "FARGATE"
    assert web["loadBalancers"] == [
        {"targetGroupArn": TARGET_GROUP_ARN, "containerName": "web", "containerPort": 8000}
    ]
    assert web["networkConfiguration"]["awsvpcConfiguration"]["subnets"] == env["ECS_SUBNETS"].split(",")
    for name, service in updated.items():
        assert service["serviceArn"] == created[name]["serviceArn"]
        # The same service: moto keeps a service's first deployment through UpdateService, where a
        # second CreateService would have replaced it.
        assert service["deployments"][-1]["id"] == created[name]["deployments"][-1]["id"]
        assert created[name]["taskDefinition"].endswith(":1")
        assert service["taskDefinition"].endswith(":2")
    worker_definition = aws("ecs").describe_task_definition(taskDefinition=worker["taskDefinition"])
    assert (
        container_env(worker_definition["taskDefinition"]["containerDefinitions"][0])["WORKER_CONCURRENCY"]
        == "20"
    )


def test_deploy_sets_a_count_given_on_an_existing_service(cli, aws, app_name, service_env):
    env = service_env
    cli("cluster", **env)
    cli("deploy", **env)

    cli("deploy", "--worker-count", "5", "--web-count", "4", **env)

    services = services_by_name(aws, env["ECS_CLUSTER"], app_name)
    assert services[f"{app_name}-worker"]["desiredCount"] == 5
    assert services[f"{app_name}-web"]["desiredCount"] == 4
    assert services[f"{app_name}-sweeper"]["desiredCount"] == 1


def test_scale_workers_changes_only_the_worker_count(cli, aws, app_name, service_env):
    env = service_env
    cli("cluster", **env)
    cli("deploy", **env)

    result = json.loads(cli("scale-workers", "--count", "12", **env).stdout)

    assert result == {"service": f"{app_name}-worker", "desiredCount": 12}
    services = services_by_name(aws, env["ECS_CLUSTER"], app_name)
    assert services[f"{app_name}-worker"]["desiredCount"] == 12
    assert services[f"{app_name}-web"]["desiredCount"] == 2


def test_deploy_refuses_a_missing_cluster_and_registers_nothing(cli, aws, app_name, service_env):
    result = cli("deploy", check=False, **service_env)

    assert result.returncode == 1 and "no active cluster" in result.stderr
    assert aws("ecs").list_task_definitions(familyPrefix=f"{app_name}-web")["taskDefinitionArns"] == []


def test_manage_runs_a_one_off_task_from_the_latest_web_definition(cli, aws, app_name, service_env):
    env = service_env
    cli("cluster", **env)
    web = ecs.task_definitions(settings_for(app_name))["web"]
    # moto 5.2.5's RunTask fails (HTTP 500) unless each container states its memory, which Fargate
    # itself does not need; the shipped definitions leave it to the task.
    web["containerDefinitions"][0]["memory"] = int(web["memory"])
    registered = aws("ecs").register_task_definition(**web)["taskDefinition"]["taskDefinitionArn"]

    result = json.loads(cli("manage", "--no-wait", "--", "migrate", "--noinput", **env).stdout)

    task = aws("ecs").describe_tasks(cluster=env["ECS_CLUSTER"], tasks=[result["task"]])["tasks"][0]
    assert task["taskDefinitionArn"] == registered
    assert task["launchType"] == "FARGATE"
    assert task["overrides"]["containerOverrides"] == [
        {"name": "web", "command": ["python", "manage.py", "migrate", "--noinput"]}
    ]


def test_the_endpoint_option_works_without_the_environment_variable(cli, moto_endpoint, app_name):
    result = cli(
        "queues", "--endpoint-url", moto_endpoint, "--queue-name", f"{app_name}-q", AWS_ENDPOINT_URL=None
    )

    assert json.loads(result.stdout)["queue"].startswith(moto_endpoint)
