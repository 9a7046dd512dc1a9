"""The production stack as CloudFormation sees it: every resource and property the issue names.

CDK's assertions.Template over a template synthesized once per session (`synthesized`), plus cfn-lint.
"""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template

from config.timeouts import Timeouts
from deploy.settings import ShopSettings
from deploy.stack import HEARTBEAT_MAX_AGE, synth

SECRET_NAMES = {"DJANGO_SECRET_KEY", "PGPASSWORD", "PAYMENT_PROVIDER_API_KEY"}


@pytest.fixture(scope="module")
def template(synthesized: dict) -> Template:
    return Template.from_json(synthesized)


def resources(synthesized: dict, kind: str) -> dict[str, dict]:
    return {k: v for k, v in synthesized["Resources"].items() if v["Type"] == kind}


def queue_visibility(synthesized: dict, *, consumer: str) -> int:
    """The payment queue's VisibilityTimeout as CloudFormation resolves it for the Consumer parameter."""
    (queue,) = [
        q for q in resources(synthesized, "AWS::SQS::Queue").values()
        if q["Properties"]["QueueName"] == "flashsale-payments"
    ]  # fmt: skip
    value = queue["Properties"]["VisibilityTimeout"]
    if not isinstance(value, dict):
        return value
    condition, when_true, when_false = value["Fn::If"]
    chosen = synthesized["Conditions"][condition] == {"Fn::Equals": [{"Ref": "Consumer"}, consumer]}
    return when_true if chosen else when_false


def containers(synthesized: dict) -> dict[str, dict]:
    return {
        c["Name"]: c
        for task in resources(synthesized, "AWS::ECS::TaskDefinition").values()
        for c in task["Properties"]["ContainerDefinitions"]
    }


def test_one_image_three_services_and_a_migrate_task(template, synthesized):
    template.resource_count_is("AWS::ECS::Service", 3)
    template.resource_count_is("AWS::ECS::TaskDefinition", 4)
    commands = {name: c["Command"] for name, c in containers(synthesized).items()}
    assert commands == {
        "web": ["python", "-m", "config.processes", "web"],
        "worker": ["python", "-m", "config.processes", "worker"],
        "sweeper": ["python", "-m", "config.processes", "sweeper"],
        "migrate": ["python", "manage.py", "migrate", "--noinput"],
    }
    images = {json.dumps(c["Image"]) for name, c in containers(synthesized).items() if name != "migrate"}
    assert len(images) == 1  # the services run one image, by the ImageTag parameter
    assert "MigrationImageTag" in json.dumps(containers(synthesized)["migrate"]["Image"])


def test_the_queue_has_the_apps_visibility_timeout_and_a_dead_letter_queue(template, synthesized):
    template.resource_count_is("AWS::SQS::Queue", 2)
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "QueueName": "flashsale-payments",
            "RedrivePolicy": {"deadLetterTargetArn": Match.any_value(), "maxReceiveCount": 5},
        },
    )
    assert queue_visibility(synthesized, consumer="ecs") == Timeouts.derive().visibility
    template.has_resource_properties(
        "AWS::SQS::Queue", {"QueueName": "flashsale-payments-dlq", "MessageRetentionPeriod": 14 * 24 * 3600}
    )


def test_https_with_the_certificate_parameter_and_http_redirects(template):
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {"Protocol": "HTTPS", "Port": 443, "Certificates": [{"CertificateArn": {"Ref": "CertificateArn"}}]},
    )
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {
            "Protocol": "HTTP",
            "Port": 80,
            "DefaultActions": [
                {
                    "Type": "redirect",
                    "RedirectConfig": Match.object_like({"Protocol": "HTTPS", "Port": "443"}),
                }
            ],
        },
    )
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {"HealthCheckPath": "/healthz", "TargetType": "ip", "Matcher": {"HttpCode": "200"}},
    )


def test_web_tasks_are_reachable_only_from_the_load_balancer(synthesized):
    ingress = resources(synthesized, "AWS::EC2::SecurityGroupIngress")
    to_web = [r["Properties"] for r in ingress.values() if r["Properties"].get("FromPort") == 8000]
    assert len(to_web) == 1
    assert "WebLBSecurityGroup" in to_web[0]["SourceSecurityGroupId"]["Fn::GetAtt"][0]
    groups = resources(synthesized, "AWS::EC2::SecurityGroup")
    inline = [g["Properties"].get("SecurityGroupIngress", []) for g in groups.values()]
    assert [rule for rules in inline for rule in rules if rule.get("CidrIp") == "0.0.0.0/0"] == [
        {"CidrIp": "0.0.0.0/0", "Description": "Allow from anyone on port 443", "FromPort": 443,
         "IpProtocol": "tcp", "ToPort": 443},
        {"CidrIp": "0.0.0.0/0", "Description": "Allow from anyone on port 80", "FromPort": 80,
         "IpProtocol": "tcp", "ToPort": 80},
    ]  # fmt: skip


def test_each_task_role_gets_only_the_queue_actions_its_role_needs(synthesized):
    def actions_of(role_prefix: str) -> set[str]:
        found: set[str] = set()
        for policy in resources(synthesized, "AWS::IAM::Policy").values():
            roles = json.dumps(policy["Properties"]["Roles"])
            if f'"{role_prefix}' in roles:
                for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                    action = statement["Action"]
                    found |= {action} if isinstance(action, str) else set(action)
                    assert statement["Resource"] != "*" or action == "ecr:GetAuthorizationToken"
        return found

    web, worker = actions_of("WebTaskTaskRole"), actions_of("WorkerTaskTaskRole")
    assert "sqs:SendMessage" in web and "sqs:ReceiveMessage" not in web
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"} <= worker
    assert not any(a.startswith(("sqs:Create", "sqs:Delete" + "Queue", "sqs:Purge")) for a in web | worker)


def test_secrets_come_from_secrets_manager_and_no_parameter_has_a_default(synthesized):
    for name, container in containers(synthesized).items():
        injected = {s["Name"] for s in container["Secrets"]}
        assert injected == SECRET_NAMES, name
        assert SECRET_NAMES.isdisjoint(e["Name"] for e in container["Environment"])
    parameters = synthesized["Parameters"]
    for name in ("CertificateArn", "DomainName", "PaymentProviderUrl", "PaymentApiKeySecretArn", "ImageTag"):
        assert "Default" not in parameters[name], name


def test_every_log_group_keeps_thirty_days(template):
    template.resource_count_is("AWS::Logs::LogGroup", 5)
    template.all_resources_properties("AWS::Logs::LogGroup", {"RetentionInDays": 30})


def test_worker_and_sweeper_have_heartbeat_health_checks(synthesized):
    for role in ("worker", "sweeper"):
        check = containers(synthesized)[role]["HealthCheck"]
        assert check["Command"] == [
            "CMD", "python", "-m", "config.heartbeat", role, "--max-age", str(HEARTBEAT_MAX_AGE)
        ]  # fmt: skip
    assert containers(synthesized)["worker"]["StopTimeout"] == 120


def test_workers_scale_on_backlog_per_task_against_the_measured_rate(synthesized):
    shop = ShopSettings()
    (policy,) = resources(synthesized, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
    config = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    # 60 s acceptable wait * 20 threads * 1/3 order/s per thread
    assert config["TargetValue"] == shop.backlog_target == 400
    metrics = {m["Id"]: m for m in config["CustomizedMetricSpecification"]["Metrics"]}
    assert metrics["visible"]["MetricStat"]["Metric"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert metrics["running"]["MetricStat"]["Metric"]["MetricName"] == "RunningTaskCount"
    assert metrics["backlog_per_task"]["Expression"] == "IF(running > 0, visible / running, visible)"
    (target,) = resources(synthesized, "AWS::ApplicationAutoScaling::ScalableTarget").values()
    assert target["Properties"]["MinCapacity"] == {"Fn::If": ["ConsumerIsLambda", 0, 1]}
    assert target["Properties"]["MaxCapacity"] == {"Fn::If": ["ConsumerIsLambda", 0, 20]}
    (worker,) = [s for k, s in resources(synthesized, "AWS::ECS::Service").items() if k.startswith("Worker")]
    assert "DesiredCount" not in worker["Properties"]  # autoscaling owns it; an update keeps it


def test_alarms_dlq_oldest_message_web_5xx_and_workers_at_max(synthesized):
    alarms = {
        a["Properties"]["AlarmName"]: a for a in resources(synthesized, "AWS::CloudWatch::Alarm").values()
    }
    assert set(alarms) == {
        "flashsale-dlq-not-empty", "flashsale-oldest-payment-job", "flashsale-web-5xx-rate",
        "flashsale-workers-at-max",
    }  # fmt: skip
    assert alarms["flashsale-dlq-not-empty"]["Properties"]["Threshold"] == 1
    assert (
        alarms["flashsale-oldest-payment-job"]["Properties"]["MetricName"] == "ApproximateAgeOfOldestMessage"
    )
    assert alarms["flashsale-workers-at-max"]["Condition"] == "ConsumerIsEcs"
    assert all(a["Properties"]["AlarmActions"] for a in alarms.values())


def test_the_lambda_consumer_exists_only_when_chosen_and_reports_batch_item_failures(synthesized):
    assert synthesized["Parameters"]["Consumer"]["AllowedValues"] == ["ecs", "lambda"]
    (mapping,) = resources(synthesized, "AWS::Lambda::EventSourceMapping").values()
    assert mapping["Condition"] == "ConsumerIsLambda"
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 50}
    (function,) = resources(synthesized, "AWS::Lambda::Function").values()
    assert function["Condition"] == "ConsumerIsLambda"
    assert function["Properties"]["ImageConfig"]["Command"] == ["config.lambda_handler.handler"]
    assert function["Properties"]["Timeout"] == Timeouts.derive().lease  # the lease bounds a charge


def test_with_the_lambda_consumer_the_queue_hides_a_message_six_times_the_functions_timeout(synthesized):
    (function,) = resources(synthesized, "AWS::Lambda::Function").values()

    visibility = queue_visibility(synthesized, consumer="lambda")

    assert visibility >= 6 * function["Properties"]["Timeout"]  # AWS's advice for a Lambda's source queue
    assert visibility <= 12 * 3600  # SQS's maximum


def test_a_broken_timeout_chain_is_refused_before_anything_is_synthesized(synthesized):
    """(`synthesized` puts this test in the synth tier: it starts the CDK's Node.js process too.)"""
    lambda_queue_too_long = Timeouts.derive(lease=7201, visibility=7261)  # 6 x 7201 s > 12 h

    with pytest.raises(ValueError, match="ORDER_LEASE_SECONDS"):
        synth(ShopSettings(timeouts=lambda_queue_too_long))


def test_cfn_lint_finds_no_errors(synthesized, tmp_path):
    from cfnlint.api import ManualArgs, lint

    path = tmp_path / "stack.json"
    path.write_text(json.dumps(synthesized))
    # Errors and warnings; W3005 (a redundant DependsOn) comes from the CDK's own constructs.
    problems = [
        m
        for m in lint(path.read_text(), config=ManualArgs(regions=["us-east-1", "eu-west-1"]))
        if m.rule.id[0] in "EW" and m.rule.id != "W3005"
    ]
    assert problems == []


def test_every_process_gets_a_share_of_the_databases_connections_that_fits_the_instance(synthesized):
    shop = ShopSettings()
    envs = {
        name: {e["Name"]: e["Value"] for e in c["Environment"]} for name, c in containers(synthesized).items()
    }

    for name, env in envs.items():
        assert (
            env["DB_POOL_MAX_SIZE"] == env["DATABASE_CONNECTION_BUDGET"] == str(shop.connections_per_process)
        ), name
    worst_case = shop.database_processes * shop.connections_per_process
    assert worst_case <= shop.db_max_connections - shop.db_reserved_connections


def test_a_stack_whose_processes_cannot_share_the_database_is_refused():
    with pytest.raises(ValueError, match="cannot share"):
        _ = ShopSettings(max_workers=200).connections_per_process


def test_the_web_tasks_share_one_redis_for_the_rate_limits(template, synthesized):
    template.resource_count_is("AWS::ElastiCache::CacheCluster", 1)
    web = {e["Name"]: e["Value"] for e in containers(synthesized)["web"]["Environment"]}
    assert "Redis" in json.dumps(web["REDIS_URL"])
    assert web["TRUSTED_PROXY_COUNT"] == "1"
    redis_ingress = [
        rule
        for rule in resources(synthesized, "AWS::EC2::SecurityGroupIngress").values()
        if rule["Properties"].get("FromPort") == 6379
    ]
    assert len(redis_ingress) == 1  # from the web tasks only
