"""The production stack, declared once (AWS CDK): read this file to know what runs in the account.

    VPC (2 AZs, 1 NAT) ─ ALB :443 (certificate) ─► web (Fargate, /healthz)       :80 → 301 https
                       └ SQS payments ─► worker (Fargate, autoscaled on backlog per task) ─┐
                         └ DLQ           or Lambda consumer (Consumer=lambda)          ─┤─► provider
                       sweeper (Fargate, 1)   migrate (one-off task)   RDS PostgreSQL ◄─┘

Synth-time settings (`ShopSettings`: task sizes, worker concurrency, min/max workers, the measured
per-worker rate, the acceptable queue wait) are Python values: the deploy command passes them and
the numbers land literally in the template, where a reviewer sees them. What differs per account
or per deploy and must never have a default (certificate, domain, provider URL, its API key, image
tags) is a CloudFormation parameter. `Consumer` (ecs | lambda) is a parameter too, so switching
consumers is a parameter flip on the same template: the other consumer's resources are conditional.

No file assets: the image comes from ECR by tag, so the template deploys with plain CloudFormation
(`python -m deploy deploy`) without `cdk bootstrap`.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import (
    aws_applicationautoscaling as appscaling,
)
from aws_cdk import (
    aws_certificatemanager as acm,
)
from aws_cdk import (
    aws_cloudwatch as cw,
)
from aws_cdk import (
    aws_cloudwatch_actions as cw_actions,
)
from aws_cdk import (
    aws_ec2 as ec2,
)
from aws_cdk import (
    aws_ecr as ecr,
)
from aws_cdk import (
    aws_ecs as ecs,
)
from aws_cdk import (
    aws_ecs_patterns as patterns,
)
from aws_cdk import (
    aws_elasticache as elasticache,
)
from aws_cdk import (
    aws_elasticloadbalancingv2 as elbv2,
)
from aws_cdk import (
    aws_lambda as lambda_,
)
from aws_cdk import (
    aws_lambda_event_sources as sources,
)
from aws_cdk import (
    aws_logs as logs,
)
from aws_cdk import (
    aws_rds as rds,
)
from aws_cdk import (
    aws_secretsmanager as sm,
)
from aws_cdk import (
    aws_sns as sns,
)
from aws_cdk import (
    aws_sqs as sqs,
)
from constructs import Construct

from deploy.settings import ShopSettings
from queues.setup import DLQ_RETENTION_SECONDS, QUEUE_RETENTION_SECONDS

WEB_PORT = 8000
# Prometheus /metrics of every task (web: its gunicorn master; worker; sweeper), for a scraper inside
# the VPC. Neither the ALB nor any security-group rule forwards it: the web's group admits the ALB
# on WEB_PORT only, the others admit nothing. CloudWatch gets the same metrics as EMF log lines.
METRICS_PORT = 9100
EMF_NAMESPACE = "FlashSale"
SETTINGS_MODULE = "config.settings.production"
DB_NAME = DB_USER = "flashsale"
# Fargate's longest stop timeout: Celery's warm shutdown lets charges in flight finish.
WORKER_STOP_TIMEOUT = 120
HEARTBEAT_MAX_AGE = 60  # an idle worker beats once per long poll (≤ 20 s): three missed beats
# The Lambda runtime sets the region itself; a Lambda has no worker threads.
LAMBDA_UNSET = ("AWS_DEFAULT_REGION", "WORKER_CONCURRENCY")
RETENTION_DAYS = {
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    90: logs.RetentionDays.THREE_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
}


class ShopStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, shop: ShopSettings | None = None, **kwargs):
        super().__init__(scope, construct_id, **kwargs)
        self.shop = shop = shop or ShopSettings()
        t = shop.timeouts
        if problems := t.problems():
            raise ValueError("; ".join(f"{setting}: {why}" for setting, why in problems))
        retention = RETENTION_DAYS[shop.log_retention_days]

        # --- parameters: per deploy, none with a default ------------------------------------------
        def param(name: str, description: str, **extra) -> cdk.CfnParameter:
            return cdk.CfnParameter(self, name, type="String", description=description, **extra)

        image_repo = param("ImageRepository", "ECR repository name holding the shop's image")
        image_tag = param("ImageTag", "Image tag the services and the Lambda run")
        migration_tag = param("MigrationImageTag", "Image tag of the migrate task (rolled first)")
        certificate_arn = param("CertificateArn", "ACM certificate ARN for the HTTPS listener")
        domain = param("DomainName", "Host name customers use (DJANGO_ALLOWED_HOSTS)")
        provider_url = param("PaymentProviderUrl", "Payment provider base URL (https://...)")
        provider_key_arn = param(
            "PaymentApiKeySecretArn", "Secrets Manager ARN of the payment provider API key", no_echo=True
        )
        consumer = param(
            "Consumer",
            "Who charges payment jobs: ECS workers or the Lambda function",
            allowed_values=["ecs", "lambda"],
            default="ecs",
        )
        is_lambda = cdk.CfnCondition(
            self, "ConsumerIsLambda", expression=cdk.Fn.condition_equals(consumer, "lambda")
        )
        is_ecs = cdk.CfnCondition(self, "ConsumerIsEcs", expression=cdk.Fn.condition_equals(consumer, "ecs"))

        # --- network, database, secrets ----------------------------------------------------------
        vpc = ec2.Vpc(self, "Vpc", max_azs=2, nat_gateways=1, restrict_default_security_group=False)
        private = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        tasks_sg = ec2.SecurityGroup(self, "TasksSg", vpc=vpc, description="worker, sweeper, migrate, Lambda")
        db_sg = ec2.SecurityGroup(self, "DatabaseSg", vpc=vpc, description="PostgreSQL")
        database = rds.DatabaseInstance(
            self,
            "Database",
            engine=rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_17_6),
            instance_type=ec2.InstanceType(shop.db_instance),
            vpc=vpc,
            vpc_subnets=private,
            security_groups=[db_sg],
            credentials=rds.Credentials.from_generated_secret(DB_USER),
            database_name=DB_NAME,
            allocated_storage=20,
            storage_encrypted=True,
            multi_az=False,
            backup_retention=cdk.Duration.days(7),
            deletion_protection=False,
            removal_policy=cdk.RemovalPolicy.SNAPSHOT,
        )
        assert database.secret is not None
        secret_key = sm.Secret(
            self,
            "DjangoSecretKey",
            description="DJANGO_SECRET_KEY",
            generate_secret_string=sm.SecretStringGenerator(password_length=64, exclude_punctuation=True),
        )
        provider_key = sm.Secret.from_secret_complete_arn(
            self, "PaymentApiKey", provider_key_arn.value_as_string
        )
        # No password in the URL: libpq takes it from PGPASSWORD, injected from the RDS secret.
        database_url = cdk.Fn.join(
            "",
            [
                f"postgres://{DB_USER}@",
                database.db_instance_endpoint_address,
                ":",
                database.db_instance_endpoint_port,
                f"/{DB_NAME}",
            ],
        )

        # --- the rate limits' shared counters (CHECKOUT_RATE_LIMIT, ...: one Redis for every web task)
        redis_sg = ec2.SecurityGroup(self, "RedisSg", vpc=vpc, description="Redis (rate limits)")
        redis_subnets = elasticache.CfnSubnetGroup(
            self,
            "RedisSubnets",
            description="private subnets",
            subnet_ids=vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS).subnet_ids,
        )
        redis = elasticache.CfnCacheCluster(
            self,
            "Redis",
            engine="redis",
            cache_node_type=shop.redis_node,
            num_cache_nodes=1,
            cache_subnet_group_name=redis_subnets.ref,
            vpc_security_group_ids=[redis_sg.security_group_id],
        )
        redis_url = cdk.Fn.join(
            "", ["redis://", redis.attr_redis_endpoint_address, ":", redis.attr_redis_endpoint_port, "/0"]
        )

        # --- queues: the visibility timeout is the app's own (config/timeouts.py) ----------------
        dlq = sqs.Queue(
            self,
            "DeadLetters",
            queue_name=f"{shop.name}-payments-dlq",
            retention_period=cdk.Duration.seconds(DLQ_RETENTION_SECONDS),
        )
        queue = sqs.Queue(
            self,
            "Payments",
            queue_name=f"{shop.name}-payments",
            visibility_timeout=cdk.Duration.seconds(t.visibility),
            retention_period=cdk.Duration.seconds(QUEUE_RETENTION_SECONDS),
            dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=shop.max_receive_count),
        )
        # Consumer=lambda: six times the function's timeout, as AWS advises for a Lambda's source queue
        # (time for the event source mapping to retry a throttled batch before SQS hands it out
        # again); the ECS workers keep their chain's. A parameter flip updates the queue in place.
        cfn_queue = queue.node.default_child
        assert isinstance(cfn_queue, sqs.CfnQueue)
        cfn_queue.visibility_timeout = cdk.Token.as_number(
            cdk.Fn.condition_if(is_lambda.logical_id, t.lambda_visibility, t.visibility)
        )

        # --- the one image, three roles ------------------------------------------------------------
        repo = ecr.Repository.from_repository_name(self, "Repo", image_repo.value_as_string)
        image = ecs.ContainerImage.from_ecr_repository(repo, image_tag.value_as_string)
        cluster = ecs.Cluster(
            self,
            "Cluster",
            cluster_name=shop.name,
            vpc=vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,  # RunningTaskCount for scaling
        )
        environment = {
            "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
            "DJANGO_ALLOWED_HOSTS": domain.value_as_string,
            "DJANGO_CSRF_TRUSTED_ORIGINS": cdk.Fn.join("", ["https://", domain.value_as_string]),
            "DATABASE_URL": database_url,
            "PAYMENT_PROVIDER_URL": provider_url.value_as_string,
            "SQS_QUEUE_URL": queue.queue_url,
            "SQS_DLQ_URL": dlq.queue_url,
            "SQS_QUEUE_NAME": queue.queue_name,
            "SQS_DLQ_NAME": dlq.queue_name,
            "SQS_MAX_RECEIVE_COUNT": str(shop.max_receive_count),
            "SQS_WAIT_TIME_SECONDS": "20",  # long polls: an idle worker costs 3 requests a minute
            "AWS_DEFAULT_REGION": cdk.Aws.REGION,
            "WORKER_CONCURRENCY": str(shop.worker_concurrency),
            "WEB_PROCESSES": str(shop.web_processes),
            # Every process's share of the instance's connections (deploy/settings.py), pooled.
            "DB_POOL_MAX_SIZE": str(shop.connections_per_process),
            "DATABASE_CONNECTION_BUDGET": str(shop.connections_per_process),
            "REDIS_URL": redis_url,
            "TRUSTED_PROXY_COUNT": "1",  # the ALB appends the client's address to X-Forwarded-For
            # Logs as JSON lines, metrics as EMF lines in them (CloudWatch extracts them, no agent).
            "LOG_FORMAT": "json",
            "METRICS_EMF": "1",
            "METRICS_EMF_NAMESPACE": EMF_NAMESPACE,
            "METRICS_ADDR": "0.0.0.0",
            "WEB_METRICS_PORT": str(METRICS_PORT),
            "WORKER_METRICS_PORT": str(METRICS_PORT),
            "SWEEPER_METRICS_PORT": str(METRICS_PORT),
            **t.as_env(),
        }
        secrets = {
            "DJANGO_SECRET_KEY": ecs.Secret.from_secrets_manager(secret_key),
            "PGPASSWORD": ecs.Secret.from_secrets_manager(database.secret, "password"),
            "PAYMENT_PROVIDER_API_KEY": ecs.Secret.from_secrets_manager(provider_key),
        }

        def task(role: str, size: tuple[int, int], command: list[str], *, tag=image, **container):
            log_group = logs.LogGroup(
                self,
                f"{role.title()}Logs",
                log_group_name=f"/ecs/{shop.name}/{role}",
                retention=retention,
                removal_policy=cdk.RemovalPolicy.DESTROY,
            )
            definition = ecs.FargateTaskDefinition(
                self,
                f"{role.title()}Task",
                family=f"{shop.name}-{role}",
                cpu=size[0],
                memory_limit_mib=size[1],
            )
            definition.add_container(
                role,
                image=tag,
                command=command,
                environment=environment,
                secrets=secrets,
                logging=ecs.LogDriver.aws_logs(stream_prefix=role, log_group=log_group),
                **container,
            )
            return definition

        def heartbeat(role: str) -> ecs.HealthCheck:
            return ecs.HealthCheck(
                command=[
                    "CMD",
                    "python",
                    "-m",
                    "config.heartbeat",
                    role,
                    "--max-age",
                    str(HEARTBEAT_MAX_AGE),
                ],
                interval=cdk.Duration.seconds(30),
                timeout=cdk.Duration.seconds(10),
                retries=3,
                start_period=cdk.Duration.seconds(60),
            )

        web_task = task(
            "web",
            shop.web_size,
            ["python", "-m", "config.processes", "web"],
            port_mappings=[ecs.PortMapping(container_port=WEB_PORT)],
        )
        environment_web_bind = f"0.0.0.0:{WEB_PORT}"
        web_task.default_container.add_environment("WEB_BIND", environment_web_bind)  # type: ignore[union-attr]
        worker_task = task(
            "worker",
            shop.worker_size,
            ["python", "-m", "config.processes", "worker"],
            health_check=heartbeat("worker"),
            stop_timeout=cdk.Duration.seconds(WORKER_STOP_TIMEOUT),
        )
        sweeper_task = task(
            "sweeper",
            shop.sweeper_size,
            ["python", "-m", "config.processes", "sweeper"],
            health_check=heartbeat("sweeper"),
        )
        migrate_task = task(
            "migrate",
            shop.sweeper_size,
            ["python", "manage.py", "migrate", "--noinput"],
            tag=ecs.ContainerImage.from_ecr_repository(repo, migration_tag.value_as_string),
        )

        # Least privilege, per role: the app never creates or lists queues in production.
        queue.grant_send_messages(web_task.task_role)  # the outbox publishes jobs
        queue.grant_consume_messages(worker_task.task_role)
        queue.grant_send_messages(worker_task.task_role)  # a retry re-publishes with a countdown
        queue.grant_send_messages(sweeper_task.task_role)  # re-publishes lost jobs, reads depth
        dlq.grant(sweeper_task.task_role, "sqs:GetQueueAttributes")
        dlq.grant_consume_messages(migrate_task.task_role)  # `manage.py dlq --redrive` as a one-off
        queue.grant_send_messages(migrate_task.task_role)

        # --- web behind the ALB: HTTPS, :80 redirects, only the ALB reaches the tasks --------------
        web = patterns.ApplicationLoadBalancedFargateService(
            self,
            "Web",
            cluster=cluster,
            task_definition=web_task,
            desired_count=shop.web_count,
            service_name=f"{shop.name}-web",
            public_load_balancer=True,
            task_subnets=private,
            certificate=acm.Certificate.from_certificate_arn(
                self, "Certificate", certificate_arn.value_as_string
            ),
            protocol=elbv2.ApplicationProtocol.HTTPS,
            redirect_http=True,
            ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            health_check_grace_period=cdk.Duration.seconds(60),
        )
        web.target_group.configure_health_check(
            path="/healthz",
            healthy_http_codes="200",
            interval=cdk.Duration.seconds(15),
            healthy_threshold_count=2,
            unhealthy_threshold_count=3,
        )
        web.target_group.set_attribute("deregistration_delay.timeout_seconds", str(t.web))

        def service(role: str, definition, **kwargs) -> ecs.FargateService:
            return ecs.FargateService(
                self,
                f"{role.title()}Service",
                cluster=cluster,
                task_definition=definition,
                service_name=f"{shop.name}-{role}",
                vpc_subnets=private,
                security_groups=[tasks_sg],
                circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
                **kwargs,
            )

        # No desired count on the worker: autoscaling owns it, and a stack update mid-sale keeps it.
        worker = service("worker", worker_task)
        sweeper = service("sweeper", sweeper_task, desired_count=1)
        for peer in (web.service, worker, sweeper):
            db_sg.add_ingress_rule(peer.connections.security_groups[0], ec2.Port.tcp(5432), "PostgreSQL")
        redis_sg.add_ingress_rule(web.service.connections.security_groups[0], ec2.Port.tcp(6379), "Redis")

        # --- worker autoscaling: target tracking on backlog per task -------------------------------
        target = appscaling.ScalableTarget(
            self,
            "WorkerScaling",
            service_namespace=appscaling.ServiceNamespace.ECS,
            resource_id=f"service/{cluster.cluster_name}/{worker.service_name}",
            scalable_dimension="ecs:service:DesiredCount",
            min_capacity=shop.min_workers,
            max_capacity=shop.max_workers,
        )
        scalable = target.node.default_child
        assert isinstance(scalable, cdk.CfnResource)
        # Consumer=lambda: the ECS workers scale to zero (and come back with a parameter flip).
        scalable.add_property_override(
            "MinCapacity", cdk.Fn.condition_if(is_lambda.logical_id, 0, shop.min_workers)
        )
        scalable.add_property_override(
            "MaxCapacity", cdk.Fn.condition_if(is_lambda.logical_id, 0, shop.max_workers)
        )
        dims = {"ClusterName": cluster.cluster_name, "ServiceName": worker.service_name}

        def query(id_: str, namespace: str, metric: str, dimensions: dict, stat: str):
            dimension_list = [
                appscaling.CfnScalingPolicy.TargetTrackingMetricDimensionProperty(name=k, value=v)
                for k, v in dimensions.items()
            ]
            return appscaling.CfnScalingPolicy.TargetTrackingMetricDataQueryProperty(
                id=id_,
                return_data=False,
                metric_stat=appscaling.CfnScalingPolicy.TargetTrackingMetricStatProperty(
                    stat=stat,
                    metric=appscaling.CfnScalingPolicy.TargetTrackingMetricProperty(
                        namespace=namespace, metric_name=metric, dimensions=dimension_list
                    ),
                ),
            )

        self.scaling_policy = appscaling.CfnScalingPolicy(
            self,
            "WorkerBacklogPerTask",
            policy_name=f"{shop.name}-worker-backlog-per-task",
            policy_type="TargetTrackingScaling",
            scaling_target_id=target.scalable_target_id,
            target_tracking_scaling_policy_configuration=appscaling.CfnScalingPolicy.TargetTrackingScalingPolicyConfigurationProperty(
                target_value=shop.backlog_target,
                scale_out_cooldown=60,
                scale_in_cooldown=300,
                customized_metric_specification=appscaling.CfnScalingPolicy.CustomizedMetricSpecificationProperty(
                    metrics=[
                        query(
                            "visible",
                            "AWS/SQS",
                            "ApproximateNumberOfMessagesVisible",
                            {"QueueName": queue.queue_name},
                            "Average",
                        ),
                        query("running", "ECS/ContainerInsights", "RunningTaskCount", dims, "Average"),
                        appscaling.CfnScalingPolicy.TargetTrackingMetricDataQueryProperty(
                            id="backlog_per_task",
                            expression="IF(running > 0, visible / running, visible)",
                            label="SQS messages waiting per running worker task",
                            return_data=True,
                        ),
                    ]
                ),
            ),
        )

        # --- the Lambda consumer (Consumer=lambda): SQS event source, partial batch failures ------
        consumer_logs = logs.LogGroup(
            self,
            "ConsumerLogs",
            log_group_name=f"/aws/lambda/{shop.name}-payments",
            retention=retention,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        consumer_fn = lambda_.DockerImageFunction(
            self,
            "ConsumerFunction",
            function_name=f"{shop.name}-payments",
            code=lambda_.DockerImageCode.from_ecr(
                repo,
                tag_or_digest=image_tag.value_as_string,
                entrypoint=["python", "-m", "awslambdaric"],
                cmd=["config.lambda_handler.handler"],
            ),
            memory_size=shop.lambda_memory_mb,
            # The lease bounds a charge (provider timeout + recording); the queue hides a message 6x it.
            timeout=cdk.Duration.seconds(t.lambda_function),
            vpc=vpc,
            vpc_subnets=private,
            security_groups=[tasks_sg],
            environment={
                **{k: v for k, v in environment.items() if k not in LAMBDA_UNSET},
                "LAMBDA_SECRETS": self.to_json_string(
                    {
                        "DJANGO_SECRET_KEY": {"arn": secret_key.secret_arn},
                        "PGPASSWORD": {"arn": database.secret.secret_arn, "field": "password"},
                        "PAYMENT_PROVIDER_API_KEY": {"arn": provider_key_arn.value_as_string},
                    }
                ),
                "POWERTOOLS_SERVICE_NAME": f"{shop.name}-payments",
            },
            log_group=consumer_logs,
        )
        consumer_fn.add_event_source(
            sources.SqsEventSource(
                queue,
                batch_size=shop.lambda_batch_size,
                report_batch_item_failures=True,
                max_concurrency=shop.lambda_max_concurrency,
            )
        )
        for secret in (secret_key, database.secret, provider_key):
            secret.grant_read(consumer_fn)
        for scope in (consumer_fn, consumer_logs):  # everything of the Lambda exists only if chosen
            for node in scope.node.find_all():
                if isinstance(node, cdk.CfnResource):
                    node.cfn_options.condition = is_lambda

        # --- alarms -------------------------------------------------------------------------------
        topic = sns.Topic(self, "Alarms", display_name=f"{shop.name} alarms")
        minute = cdk.Duration.minutes(1)

        def alarm(id_: str, description: str, metric: cw.IMetric, threshold: float, periods: int, **kw):
            made = cw.Alarm(
                self,
                id_,
                alarm_name=f"{shop.name}-{id_}",
                alarm_description=description,
                metric=metric,
                threshold=threshold,
                evaluation_periods=periods,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                comparison_operator=kw.pop(
                    "comparison", cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
                ),
                **kw,
            )
            made.add_alarm_action(cw_actions.SnsAction(topic))
            return made

        alarm(
            "dlq-not-empty",
            "Payment jobs were dead-lettered: `manage.py dlq --show 10`",
            dlq.metric_approximate_number_of_messages_visible(period=minute, statistic="Maximum"),
            1,
            1,
        )
        alarm(
            "oldest-payment-job",
            f"A payment job waited over {shop.oldest_message_alarm_seconds}s",
            queue.metric_approximate_age_of_oldest_message(period=minute, statistic="Maximum"),
            shop.oldest_message_alarm_seconds,
            3,
            comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        )
        lb = web.load_balancer
        alarm(
            "web-5xx-rate",
            f"Over {shop.web_5xx_alarm_percent:g}% of web requests answered 5xx",
            cw.MathExpression(
                expression="100 * (FILL(t5xx, 0) + FILL(e5xx, 0)) / MAX([requests, 1])",
                using_metrics={
                    "t5xx": lb.metrics.http_code_target(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=minute),
                    "e5xx": lb.metrics.http_code_elb(elbv2.HttpCodeElb.ELB_5XX_COUNT, period=minute),
                    "requests": lb.metrics.request_count(period=minute),
                },
                period=minute,
                label="web 5xx %",
            ),
            shop.web_5xx_alarm_percent,
            3,
            comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        )
        at_max = alarm(
            "workers-at-max",
            f"Worker tasks at their maximum ({shop.max_workers}) for 15 minutes",
            cw.Metric(
                namespace="ECS/ContainerInsights",
                metric_name="DesiredTaskCount",
                dimensions_map=dims,
                period=cdk.Duration.minutes(5),
                statistic="Maximum",
            ),
            shop.max_workers,
            3,
        )
        at_max_cfn = at_max.node.default_child
        assert isinstance(at_max_cfn, cdk.CfnResource)
        at_max_cfn.cfn_options.condition = is_ecs

        self.dashboard = dashboard(self, shop.name, queue=queue, dlq=dlq)

        # --- what the deploy command reads ----------------------------------------------------------
        outputs = {
            "ClusterName": cluster.cluster_name,
            "WebService": web.service.service_name,
            "WorkerService": worker.service_name,
            "SweeperService": sweeper.service_name,
            "MigrateTaskDefinition": migrate_task.task_definition_arn,
            "TaskSubnets": cdk.Fn.join(",", [s.subnet_id for s in vpc.private_subnets]),
            "TaskSecurityGroup": tasks_sg.security_group_id,
            "QueueUrl": queue.queue_url,
            "DlqUrl": dlq.queue_url,
            "LoadBalancerDns": lb.load_balancer_dns_name,
            "AlarmTopic": topic.topic_arn,
            "DatabaseEndpoint": database.db_instance_endpoint_address,
            "WorkerBacklogTarget": str(shop.backlog_target),
        }
        for key, value in outputs.items():
            cdk.CfnOutput(self, f"Out{key}", key=key, value=value)


def emf(metric: str, statistic: str = "Sum", label: str | None = None, **dimensions: str) -> cw.Metric:
    """One of the shop's EMF metrics (observability/metrics.py, EMF_METRICS)."""
    return cw.Metric(
        namespace=EMF_NAMESPACE,
        metric_name=metric,
        dimensions_map=dimensions or None,
        statistic=statistic,
        period=cdk.Duration.minutes(1),
        label=label or " ".join([metric, *dimensions.values()]),
    )


def dashboard(scope: Construct, name: str, *, queue: sqs.Queue, dlq: sqs.Queue) -> cw.Dashboard:
    """The operator's CloudWatch dashboard: the shop's EMF metrics beside SQS's own."""
    minute = cdk.Duration.minutes(1)
    modes = ("async", "sync")
    board = cw.Dashboard(scope, "Dashboard", dashboard_name=f"{name}-operations")

    def graph(title: str, metrics: list[cw.IMetric], **kw) -> cw.GraphWidget:
        return cw.GraphWidget(title=title, left=metrics, width=8, height=6, **kw)

    board.add_widgets(
        graph(
            "Orders per minute",
            [emf(m, Mode=mode) for m in ("OrdersAccepted", "OrdersPaid", "OrdersFailed") for mode in modes],
        ),
        graph(
            "Checkout latency (ms)",
            [
                emf("CheckoutLatency", stat, f"{stat} {mode}", Mode=mode)
                for stat in ("p50", "p99")
                for mode in modes
            ],
        ),
        graph(
            "Accepted → paid (s)",
            [emf("AcceptedToPaidLatency", stat, stat) for stat in ("p50", "p90", "p99", "Maximum")],
        ),
    )
    board.add_widgets(
        graph(
            "Payment jobs in SQS (sampled by the sweeper)",
            [emf("SqsWaiting", "Maximum"), emf("SqsInFlight", "Maximum"), emf("SqsDeadLettered", "Maximum")],
        ),
        graph(
            "Oldest waiting order (s) and unpublished orders",
            [emf("OldestWaitingOrderAge", "Maximum")],
            right=[emf("OutboxUnpublished", "Maximum")],
        ),
        graph(
            "SQS's own view",
            [
                queue.metric_approximate_number_of_messages_visible(period=minute, statistic="Maximum"),
                queue.metric_approximate_number_of_messages_not_visible(period=minute, statistic="Maximum"),
                dlq.metric_approximate_number_of_messages_visible(period=minute, statistic="Maximum"),
            ],
            right=[queue.metric_approximate_age_of_oldest_message(period=minute, statistic="Maximum")],
        ),
    )
    board.add_widgets(
        graph(
            "Provider answers per minute",
            [
                emf("ChargeAttempts", Outcome=o)
                for o in ("charged", "declined", "rejected", "unavailable", "unauthorized")
            ],
            right=[emf("ProviderLatency", "p99", "provider p99 (s)")],
        ),
        graph(
            "Charge outcomes per minute",
            [emf("ChargeOutcomes", Outcome=o) for o in ("paid", "failed", "retry", "skipped")],
        ),
        graph(
            "Idempotent replays and 429s per minute",
            [
                *(emf("IdempotentReplays", Scope=s) for s in ("checkout-async", "checkout-sync")),
                *(emf("ThrottledRequests", Scope=s) for s in ("checkout", "order-status")),
            ],
        ),
    )
    return board


def synth(shop: ShopSettings | None = None, stack_name: str | None = None) -> dict:
    """Synthesize the stack to a CloudFormation template (a dict), in-process, no CDK CLI."""
    shop = shop or ShopSettings()
    app = cdk.App(analytics_reporting=False)
    stack = ShopStack(app, stack_name or shop.name, shop, synthesizer=cdk.BootstraplessSynthesizer())
    return app.synth().get_stack_by_name(stack.stack_name).template
