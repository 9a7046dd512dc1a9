"""The production stack, declared once (AWS CDK): read this file to know what runs in the account.

    internet ─► WAF (per-IP rate limit, AWS managed rules) ─► ALB :443 (certificate; :80 → 301 https;
                                                              /readyz → 404; access logs → S3)
      ─► web (Fargate, ≥ 2 tasks across the AZs, /healthz) ─► Redis (primary + replica, 2 AZs)
           └ commits the order (its row is the outbox)
         relay (Fargate, 2 tasks, one per AZ): publishes the accepted orders' jobs
           └ SQS payments ─► worker (Fargate, autoscaled on backlog per task) ─┐
             └ DLQ           or Lambda consumer (Consumer=lambda)          ─┴─► provider (internet,
         sweeper (Fargate, 1)   migrate, ops (one-off tasks)                      via the NATs)
         web, relay, worker, Lambda, sweeper, one-offs ─► RDS Proxy (TLS) ─► RDS PostgreSQL (Multi-AZ)
    VPC: 2 AZs, public and private subnets, a NAT gateway in each AZ

Synth-time settings (`ShopSettings`: task sizes, worker concurrency, min/max workers, the measured
per-worker rate, the acceptable queue wait, each role's connection pool) are Python values: the
deploy command passes them and the numbers land literally in the template, where a reviewer sees
them. What differs per account or per deploy and must never have a default (certificate, domain,
the admin's path, provider URL, its API key, image tags) is a CloudFormation parameter. `Consumer`
(ecs | lambda) is a parameter too, so switching consumers is a parameter flip on the same template:
the other consumer's resources are conditional.

No file assets: the image comes from ECR by tag, so the template deploys with plain CloudFormation
(`python -m deploy deploy`) without `cdk bootstrap`. The template is synthesized for one region
(the deploy's: the ALB's log delivery is granted to that region's load-balancing principal).
"""

from __future__ import annotations

from deploy.node import JSII_NODE  # noqa: F401  (first: jsii starts Node.js on `import aws_cdk`)

# isort: split
import math
import os

import aws_cdk as cdk
import boto3
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
    aws_iam as iam,
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
    aws_s3 as s3,
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
from aws_cdk import (
    aws_wafv2 as wafv2,
)
from constructs import Construct

from deploy.settings import ShopSettings
from queues.setup import DLQ_RETENTION_SECONDS, QUEUE_RETENTION_SECONDS

WEB_PORT = 8000
# The web scales out before its tasks are 60 % busy (deploy/plan.py sizes the sale the same way).
WEB_CPU_TARGET_PERCENT = 60
# Prometheus /metrics of every task (web: its gunicorn master; worker; relay; sweeper), for a scraper inside
# the VPC. Neither the ALB nor any security-group rule forwards it: the web's group admits the ALB
# on WEB_PORT only, the others admit nothing. CloudWatch gets the same metrics as EMF log lines.
METRICS_PORT = 9100
EMF_NAMESPACE = "FlashSale"
SETTINGS_MODULE = "config.settings.production"
DB_NAME = DB_USER = "flashsale"
DB_PORT = 5432
# RDS Proxy's default borrow timeout is 120 s: a transaction that finds every one of the proxy's
# connections to the instance lent out would wait that long for one, holding its web thread past the
# ALB's 60 s idle timeout (the customer gets the ALB's 504, the thread stays busy, the next requests
# queue behind it). 5 s, then the proxy refuses: Django raises OperationalError, the API answers 503
# at once (core/api.py) and the thread is free; a worker's claim or record fails the same way and
# its job comes back from SQS (the lease and the provider's idempotency key keep it charged once).
PROXY_BORROW_TIMEOUT_SECONDS = 5
WEB_POOL_MIN_SIZE = 4  # connections a web process opens at start; the rest on demand, up to its pool
# Fargate's longest stop timeout: Celery's warm shutdown lets charges in flight finish.
WORKER_STOP_TIMEOUT = 120
HEARTBEAT_MAX_AGE = 60  # an idle worker beats once per long poll (≤ 20 s): three missed beats
# The Lambda runtime sets the region itself.
LAMBDA_UNSET = ("AWS_DEFAULT_REGION",)
# Who may read the payment provider's API key: the roles that charge (the web's sync checkout, the
# workers, the Lambda) and the ops one-off (reconcile lists the provider's charges). The settings
# refuse to start without a value (config/settings/base.py, orders.E002), so the others get this
# placeholder, which is not a key: were it ever sent, the provider would refuse it (401).
NOT_A_PROVIDER_KEY = "none: this task never calls the payment provider"
# The admin's URL path (DJANGO_ADMIN_URL): a parameter, so that it is not in the repository.
ADMIN_PATH_PATTERN = r"^[A-Za-z0-9-]{8,64}/$"
READINESS_PATH = "/readyz"  # observability/readiness.py: for probes inside the VPC, never from the internet
ACCESS_LOG_DAYS = 90

# --- WAF: a per-IP rate limit above everything the app itself lets one client do ----------------
# The app's own per-client limits, counted in Redis (orders/api/throttling.py; config/settings/base.py
# has the same defaults). The stack sets them on the web, so the WAF limit below is computed from the
# values production runs with, and the app's limits stay the fine-grained layer: WAF only sheds a
# flood the app would refuse anyway (or one Redis would let through: the limits fail open when Redis
# is down), before it costs a web thread.
APP_RATE_LIMITS = {"CHECKOUT_RATE_LIMIT": "20/min", "ORDER_STATUS_RATE_LIMIT": "300/min"}
# WAF counts each IP's requests over a trailing window, 5 minutes (AWS's default; 60-600 s exist).
# 5 minutes, not 1: a customer hammering "buy" in the first seconds of a sale is averaged, not cut.
WAF_WINDOW_SECONDS = 300
# What the app does not limit: one person browsing (pages, the product API, static files), per minute.
BROWSING_REQUESTS_PER_MINUTE = 120
# Customers sharing one address (an office, a mobile carrier's NAT) whom WAF must not refuse together.
CUSTOMERS_PER_IP = 4
RATE_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}  # DRF's rate syntax, as the app parses it
# The label the common rule set's SizeRestrictions_BODY puts on a request whose body is over 8 KB.
BODY_SIZE_LABEL = "awswaf:managed:aws:core-rule-set:SizeRestrictions_Body"
WAF_BLOCKED_ALARM = 1000  # requests WAF blocked in 5 minutes: an attack, or a rule refusing customers


def requests_per_window(rate: str, window: int) -> int:
    """The most requests a fixed-window limit ("20/min") lets one client make in any `window` seconds.

    The app counts in fixed windows (orders/api/throttling.py); a sliding interval of `window`
    seconds overlaps ceil(window / period) + 1 of them, each allowing the full count.
    """
    count, _, unit = rate.partition("/")
    period = RATE_PERIODS[unit[0]]
    return int(count) * (math.ceil(window / period) + 1)


def waf_rate_limit() -> int:
    """Requests per IP per WAF window: CUSTOMERS_PER_IP x (every app limit at its full + browsing).

    20/min → 20 x 6 = 120; 300/min → 300 x 6 = 1,800; browsing 120/min x 5 = 600;
    one customer 2,520 per 5 minutes; x 4 customers per IP = 10,080.
    """
    limited = sum(requests_per_window(rate, WAF_WINDOW_SECONDS) for rate in APP_RATE_LIMITS.values())
    browsing = BROWSING_REQUESTS_PER_MINUTE * WAF_WINDOW_SECONDS // 60
    return CUSTOMERS_PER_IP * (limited + browsing)


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
        admin_path = param(
            "AdminPath",
            "the admin's URL path, e.g. staff-7f3a9c/: not guessable (DJANGO_ADMIN_URL)",
            allowed_pattern=ADMIN_PATH_PATTERN,
            constraint_description="8 to 64 letters, digits or dashes, then one slash",
        )
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

        # --- network: two AZs, a NAT gateway in each (the provider is on the internet) ------------
        # One NAT would be a single AZ's outage away from no charge at all; two cost ~$33/month more.
        vpc = ec2.Vpc(self, "Vpc", max_azs=2, nat_gateways=2, restrict_default_security_group=False)
        private = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        # The relay's tasks are in this group too. Its description stays as it was: CloudFormation
        # replaces a security group whose description changes.
        tasks_sg = ec2.SecurityGroup(
            self, "TasksSg", vpc=vpc, description="worker, sweeper, migrate, ops, Lambda"
        )
        db_sg = ec2.SecurityGroup(self, "DatabaseSg", vpc=vpc, description="PostgreSQL")
        proxy_sg = ec2.SecurityGroup(self, "DatabaseProxySg", vpc=vpc, description="RDS Proxy")

        # --- PostgreSQL, Multi-AZ, reached only through RDS Proxy ----------------------------------
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
            multi_az=shop.db_multi_az,  # a standby in the other AZ; failover in a minute or two
            backup_retention=cdk.Duration.days(7),
            deletion_protection=True,  # `teardown` needs it turned off first (deploy/README.md)
            monitoring_interval=cdk.Duration.seconds(60),  # enhanced monitoring: the OS's CPU, memory, IO
            removal_policy=cdk.RemovalPolicy.SNAPSHOT,
        )
        assert database.secret is not None
        # Every process pools its client connections to the proxy (DB_POOL_MAX_SIZE, per role), and
        # the proxy lends its own connections to the instance one transaction at a time: hundreds of
        # clients share max_connections_percent of the instance's (deploy/settings.py). Django keeps
        # a session free of what would pin it to one connection (no server-side prepared statements,
        # no SET, no advisory locks), migrations included: so everything goes through the proxy, the
        # migrate and ops one-offs too, and the instance admits the proxy alone. A failover is the
        # proxy's to ride out: clients keep their connections, it reconnects to the new primary.
        proxy = rds.DatabaseProxy(
            self,
            "DatabaseProxy",
            proxy_target=rds.ProxyTarget.from_instance(database),
            secrets=[database.secret],
            vpc=vpc,
            vpc_subnets=private,
            security_groups=[proxy_sg],
            require_tls=True,
            client_password_auth_type=rds.ClientPasswordAuthType.POSTGRES_SCRAM_SHA_256,
            max_connections_percent=shop.proxy_max_connections_percent,
            borrow_timeout=cdk.Duration.seconds(PROXY_BORROW_TIMEOUT_SECONDS),
            db_proxy_name=f"{shop.name}-db",  # unique in the account and region, like the other names
            # idle_client_timeout: the default 30 minutes; the pools keep their connections busier.
        )
        db_sg.add_ingress_rule(proxy_sg, ec2.Port.tcp(DB_PORT), "PostgreSQL from RDS Proxy only")
        secret_key = sm.Secret(
            self,
            "DjangoSecretKey",
            description="DJANGO_SECRET_KEY",
            generate_secret_string=sm.SecretStringGenerator(password_length=64, exclude_punctuation=True),
        )
        provider_key = sm.Secret.from_secret_complete_arn(
            self, "PaymentApiKey", provider_key_arn.value_as_string
        )
        # No password in the URL: libpq takes it from PGPASSWORD, injected from the RDS secret (the
        # proxy checks it against the same secret). sslmode=require: the proxy refuses plain TCP;
        # django-environ puts the query into the connection's OPTIONS.
        database_url = cdk.Fn.join(
            "", [f"postgres://{DB_USER}@", proxy.endpoint, f":{DB_PORT}/{DB_NAME}?sslmode=require"]
        )

        # --- the rate limits' shared counters (CHECKOUT_RATE_LIMIT, ...: one Redis for every web task)
        # When Redis cannot answer, the limits fail open (orders/api/throttling.py serves the request
        # unlimited rather than refuse it; 0.5 s socket timeouts in config/settings/base.py), and the
        # WAF's per-IP limit below is all that is left. So a primary and a replica in the other AZ,
        # with automatic failover: the primary endpoint moves to the replica within a minute or so.
        redis_sg = ec2.SecurityGroup(self, "RedisSg", vpc=vpc, description="Redis (rate limits)")
        redis_subnets = elasticache.CfnSubnetGroup(
            self,
            "RedisSubnets",
            description="private subnets",
            subnet_ids=vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS).subnet_ids,
        )
        redis = elasticache.CfnReplicationGroup(
            self,
            "RedisReplicas",
            replication_group_description=f"{shop.name} rate limits",
            engine="redis",
            cache_node_type=shop.redis_node,
            num_cache_clusters=2,  # a primary and one replica
            automatic_failover_enabled=True,
            multi_az_enabled=True,
            cache_subnet_group_name=redis_subnets.ref,
            security_group_ids=[redis_sg.security_group_id],
            at_rest_encryption_enabled=True,
            transit_encryption_enabled=True,  # rediss://, verified against the system's CAs
        )
        redis_url = cdk.Fn.join(
            "",
            [
                "rediss://",
                redis.attr_primary_end_point_address,
                ":",
                redis.attr_primary_end_point_port,
                "/0",
            ],
        )

        # --- queues: the visibility timeout is the app's own (core/timeouts.py) ----------------
        dlq = sqs.Queue(
            self,
            "DeadLetters",
            queue_name=f"{shop.name}-payments-dlq",
            retention_period=cdk.Duration.seconds(DLQ_RETENTION_SECONDS),
            encryption=sqs.QueueEncryption.SQS_MANAGED,  # SSE-SQS: no key policy for every role
        )
        queue = sqs.Queue(
            self,
            "Payments",
            queue_name=f"{shop.name}-payments",
            visibility_timeout=cdk.Duration.seconds(t.visibility),
            retention_period=cdk.Duration.seconds(QUEUE_RETENTION_SECONDS),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
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

        # --- the one image, its roles --------------------------------------------------------------
        repo = ecr.Repository.from_repository_name(self, "Repo", image_repo.value_as_string)
        image = ecs.ContainerImage.from_ecr_repository(repo, image_tag.value_as_string)
        cluster = ecs.Cluster(
            self,
            "Cluster",
            cluster_name=shop.name,
            vpc=vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,  # RunningTaskCount for scaling
        )
        # What every role shares; each role adds its own below (its pool first of all).
        environment = {
            "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
            "DJANGO_ALLOWED_HOSTS": domain.value_as_string,
            "DJANGO_CSRF_TRUSTED_ORIGINS": cdk.Fn.join("", ["https://", domain.value_as_string]),
            "DJANGO_ADMIN_URL": admin_path.value_as_string,
            # Customer emails (orders/notifications.py) through SES, from the shop's own domain (an
            # identity the operator verifies in SES: deploy/README.md).
            "EMAIL_BACKEND": "django_ses.SESBackend",
            "AWS_SES_REGION_NAME": cdk.Aws.REGION,
            "DEFAULT_FROM_EMAIL": cdk.Fn.join("", ["orders@", domain.value_as_string]),
            "SHOP_BASE_URL": cdk.Fn.join("", ["https://", domain.value_as_string]),
            "DATABASE_URL": database_url,
            "PAYMENT_PROVIDER_URL": provider_url.value_as_string,
            "SQS_QUEUE_URL": queue.queue_url,
            "SQS_DLQ_URL": dlq.queue_url,
            "SQS_QUEUE_NAME": queue.queue_name,
            "SQS_DLQ_NAME": dlq.queue_name,
            "SQS_MAX_RECEIVE_COUNT": str(shop.max_receive_count),
            "SQS_WAIT_TIME_SECONDS": "20",  # long polls: an idle worker costs 3 requests a minute
            "AWS_DEFAULT_REGION": cdk.Aws.REGION,
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
            "RELAY_METRICS_PORT": str(METRICS_PORT),
            **t.as_env(),
        }

        def pool(role: str) -> dict[str, str]:
            """A process's connection pool to the proxy (deploy/settings.py's pool_size per role)."""
            size = shop.pool_size(role)
            least = min(WEB_POOL_MIN_SIZE if role == "web" else 2, size)
            return {
                "DB_POOL_MAX_SIZE": str(size),
                "DB_POOL_MIN_SIZE": str(least),
                "DATABASE_CONNECTION_BUDGET": str(size),
            }

        role_environment = {
            "web": {
                **pool("web"),
                "WEB_PROCESSES": str(shop.web_processes),
                "WEB_THREADS": str(shop.web_threads),
                "WEB_BIND": f"0.0.0.0:{WEB_PORT}",
                **APP_RATE_LIMITS,
            },
            "worker": {**pool("worker"), "WORKER_CONCURRENCY": str(shop.worker_concurrency)},
            "relay": {
                **pool("relay"),
                "RELAY_THREADS": str(shop.relay_threads),
                "RELAY_BATCH_SIZE": str(shop.relay_batch_size),
            },
            "sweeper": pool("sweeper"),
            "migrate": pool("oneoff"),
            "ops": pool("oneoff"),
        }
        # Secrets, per role: ECS injects each container's own, read by its execution role alone.
        django_secrets = {
            "DJANGO_SECRET_KEY": ecs.Secret.from_secrets_manager(secret_key),
            "PGPASSWORD": ecs.Secret.from_secrets_manager(database.secret, "password"),
        }
        charging_secrets = {
            **django_secrets,
            "PAYMENT_PROVIDER_API_KEY": ecs.Secret.from_secrets_manager(provider_key),
        }
        role_secrets = {
            "web": charging_secrets,  # a sync checkout charges inside the request
            "worker": charging_secrets,
            "relay": django_secrets,  # publishes jobs; never calls the provider
            "sweeper": django_secrets,  # re-publishes jobs; never calls the provider
            "migrate": django_secrets,
            "ops": charging_secrets,  # `manage -- reconcile` reads the provider's charges
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
            secrets = role_secrets[role]
            placeholder = {} if "PAYMENT_PROVIDER_API_KEY" in secrets else {
                "PAYMENT_PROVIDER_API_KEY": NOT_A_PROVIDER_KEY
            }  # fmt: skip
            definition.add_container(
                role,
                image=tag,
                command=command,
                environment={**environment, **role_environment[role], **placeholder},
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
                    "observability.heartbeat",
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
        worker_task = task(
            "worker",
            shop.worker_size,
            ["python", "-m", "config.processes", "worker"],
            health_check=heartbeat("worker"),
            stop_timeout=cdk.Duration.seconds(WORKER_STOP_TIMEOUT),
        )
        # The relay beats once a second while its threads live (orders/relay.py); SIGTERM lets each
        # thread finish its pass (at most RELAY_BACKOFF_MAX_SECONDS + 5 s), inside ECS's default 30 s.
        relay_task = task(
            "relay",
            shop.relay_size,
            ["python", "-m", "config.processes", "relay"],
            health_check=heartbeat("relay"),
        )
        sweeper_task = task(
            "sweeper",
            shop.sweeper_size,
            ["python", "-m", "config.processes", "sweeper"],
            health_check=heartbeat("sweeper"),
        )
        # Migrations roll first, on the next image (MigrationImageTag): the database and Django's
        # secret, nothing else.
        migrate_task = task(
            "migrate",
            shop.sweeper_size,
            ["python", "manage.py", "migrate", "--noinput"],
            tag=ecs.ContainerImage.from_ecr_repository(repo, migration_tag.value_as_string),
        )
        # `python -m deploy manage -- <command>`: the operator's one-offs (dlq --redrive, reconcile,
        # seed_catalogue, ...) on the services' image, with what those commands need.
        ops_task = task("ops", shop.sweeper_size, ["python", "manage.py", "help"])

        # Least privilege, per role: the app never creates, lists or purges queues in production.
        # The web still sends: a sync checkout that times out hands its order to the workers, and the
        # console re-publishes; it reads the depth too.
        queue.grant_send_messages(web_task.task_role)
        # The operations console (console/, queues/sqs.py): the DLQ's depth, and a redrive by SQS's
        # own StartMessageMoveTask, which acts with the caller's rights: receive and delete on the
        # DLQ, send to the payment queue (above). Elsewhere (no native task) the same calls by hand.
        dlq.grant(
            web_task.task_role,
            "sqs:GetQueueAttributes",
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:StartMessageMoveTask",
        )
        queue.grant_consume_messages(worker_task.task_role)
        queue.grant_send_messages(worker_task.task_role)  # a retry re-publishes with a countdown
        # The relay publishes every accepted order's job (SendMessageBatch is sqs:SendMessage). Both
        # consumers read this one queue (the Lambda through its SQS event source), so the grant is
        # the same with Consumer=lambda.
        queue.grant_send_messages(relay_task.task_role)
        queue.grant_send_messages(sweeper_task.task_role)  # re-publishes lost jobs, reads depth
        dlq.grant(sweeper_task.task_role, "sqs:GetQueueAttributes")
        dlq.grant_consume_messages(ops_task.task_role)  # `manage.py dlq --show / --redrive`
        queue.grant_send_messages(ops_task.task_role)
        # The sweeper mails the customers of ended orders (orders/notifications.py), and ops may run
        # a sweep by hand; from the shop's domain identity only.
        self.send_email = iam.PolicyStatement(
            actions=["ses:SendEmail", "ses:SendRawEmail"],
            resources=[
                cdk.Fn.join(
                    "",
                    [
                        "arn:aws:ses:",
                        cdk.Aws.REGION,
                        ":",
                        cdk.Aws.ACCOUNT_ID,
                        ":identity/",
                        domain.value_as_string,
                    ],
                )
            ],
        )
        for mailer in (sweeper_task, ops_task):
            mailer.add_to_task_role_policy(self.send_email)

        # --- web behind the ALB: HTTPS, :80 redirects, only the ALB reaches the tasks --------------
        web = patterns.ApplicationLoadBalancedFargateService(
            self,
            "Web",
            cluster=cluster,
            task_definition=web_task,
            desired_count=shop.web_count,  # ≥ 2: Fargate spreads a service's tasks across the AZs
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
        # The ALB's health check probes /healthz on each task directly (listener rules never apply
        # to it); /readyz answers only inside the VPC: from the internet, a 404 at the ALB.
        web.target_group.configure_health_check(
            path="/healthz",
            healthy_http_codes="200",
            interval=cdk.Duration.seconds(15),
            healthy_threshold_count=2,
            unhealthy_threshold_count=3,
        )
        web.target_group.set_attribute("deregistration_delay.timeout_seconds", str(t.web))
        elbv2.ApplicationListenerRule(
            self,
            "ReadinessNotPublic",
            listener=web.listener,
            priority=1,
            conditions=[elbv2.ListenerCondition.path_patterns([READINESS_PATH])],
            action=elbv2.ListenerAction.fixed_response(
                404, content_type="text/plain", message_body="Not Found"
            ),
        )
        lb = web.load_balancer
        lb.set_attribute("routing.http.drop_invalid_header_fields.enabled", "true")
        access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # the only encryption ALB log delivery takes
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=cdk.Duration.days(ACCESS_LOG_DAYS),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                )
            ],
            # Kept when the stack is deleted (CloudFormation cannot delete a bucket with objects in
            # it); its objects expire on their own.
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        lb.log_access_logs(access_logs, prefix="alb")
        self.web_acl = web_acl = self.firewall(shop.name, admin_path.value_as_string)
        wafv2.CfnWebACLAssociation(
            self, "WebAclAssociation", resource_arn=lb.load_balancer_arn, web_acl_arn=web_acl.attr_arn
        )

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
        # Two relays, one per AZ: like the web's tasks, Fargate spreads a service's tasks across the
        # AZs of its subnets, and rebalancing moves one back once a lost AZ returns. A rollout starts
        # the new relays before it stops the old (100 %): any number may run side by side.
        relay = service(
            "relay",
            relay_task,
            desired_count=shop.relay_count,
            min_healthy_percent=100,
            max_healthy_percent=200,
            availability_zone_rebalancing=ecs.AvailabilityZoneRebalancing.ENABLED,
        )
        # The proxy admits the web and the tasks' group (worker, relay, sweeper, migrate, ops, Lambda).
        for peer in (web.service.connections.security_groups[0], tasks_sg):
            proxy_sg.add_ingress_rule(peer, ec2.Port.tcp(DB_PORT), "PostgreSQL through RDS Proxy")
        redis_sg.add_ingress_rule(web.service.connections.security_groups[0], ec2.Port.tcp(6379), "Redis")

        # --- web autoscaling: CPU target tracking, from the AZ floor to what the connections budget -
        web_scaling = web.service.auto_scale_task_count(
            min_capacity=shop.web_count, max_capacity=shop.web_max_count
        )
        web_scaling.scale_on_cpu_utilization(
            "WebCpu",
            target_utilization_percent=WEB_CPU_TARGET_PERCENT,
            scale_out_cooldown=cdk.Duration.seconds(60),
            scale_in_cooldown=cdk.Duration.seconds(300),
        )

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
                cmd=["orders.lambda_handler.handler"],
            ),
            memory_size=shop.lambda_memory_mb,
            # The lease bounds a charge (provider timeout + recording); the queue hides a message 6x it.
            timeout=cdk.Duration.seconds(t.lambda_function),
            vpc=vpc,
            vpc_subnets=private,
            security_groups=[tasks_sg],
            environment={
                **{k: v for k, v in environment.items() if k not in LAMBDA_UNSET},
                # One invocation at a time per environment: a pool of one keeps its client connection
                # to the proxy across the provider call and warm invocations (0, no pool, would open
                # a new TLS connection for the claim and another for the record: charging closes
                # the connection before the call). The proxy lends an instance connection only
                # around each transaction, so 50 environments hold 50 idle clients, not 50 backends.
                **pool("lambda"),
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
        alarm(
            "relays-down",
            f"Fewer than {shop.relay_count} relay tasks ran for 5 minutes: an AZ lost, or relays failing "
            "their heartbeat. With none, the sweeper publishes jobs after SWEEP_GRACE_SECONDS",
            cw.Metric(
                namespace="ECS/ContainerInsights",
                metric_name="RunningTaskCount",
                dimensions_map={"ClusterName": cluster.cluster_name, "ServiceName": relay.service_name},
                period=minute,
                statistic="Minimum",
            ),
            shop.relay_count,
            5,
            comparison=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
        )
        alarm(
            "orders-unpublished",
            f"Over {shop.unpublished_alarm_orders} accepted orders without a published job at every "
            "sample for 5 minutes: SQS refuses, or the relays fall behind",
            emf("OutboxUnpublished", "Minimum"),
            shop.unpublished_alarm_orders,
            5,
            comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        )
        alarm(
            "waf-blocking",
            f"WAF blocked over {WAF_BLOCKED_ALARM} requests in 5 minutes: an attack, or a rule refusing "
            "customers (the web ACL's sampled requests say which)",
            cw.Metric(
                namespace="AWS/WAFV2",
                metric_name="BlockedRequests",
                dimensions_map={"WebACL": f"{shop.name}-web", "Region": self.region, "Rule": "ALL"},
                period=cdk.Duration.minutes(5),
                statistic="Sum",
            ),
            WAF_BLOCKED_ALARM,
            1,
            comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        )

        self.dashboard = dashboard(self, shop.name, queue=queue, dlq=dlq)

        # --- what the deploy command reads ----------------------------------------------------------
        outputs = {
            "ClusterName": cluster.cluster_name,
            "WebService": web.service.service_name,
            "WorkerService": worker.service_name,
            "SweeperService": sweeper.service_name,
            "RelayService": relay.service_name,
            "MigrateTaskDefinition": migrate_task.task_definition_arn,
            "OpsTaskDefinition": ops_task.task_definition_arn,
            "TaskSubnets": cdk.Fn.join(",", [s.subnet_id for s in vpc.private_subnets]),
            "TaskSecurityGroup": tasks_sg.security_group_id,
            "QueueUrl": queue.queue_url,
            "DlqUrl": dlq.queue_url,
            "LoadBalancerDns": lb.load_balancer_dns_name,
            "AlarmTopic": topic.topic_arn,
            "DatabaseEndpoint": database.db_instance_endpoint_address,
            "DatabaseProxyEndpoint": proxy.endpoint,
            "AccessLogBucket": access_logs.bucket_name,
            "WorkerBacklogTarget": str(shop.backlog_target),
        }
        for key, value in outputs.items():
            cdk.CfnOutput(self, f"Out{key}", key=key, value=value)

    def firewall(self, name: str, admin_path: str) -> wafv2.CfnWebACL:
        """The ALB's web ACL: a per-IP rate limit, AWS's managed rules, /readyz kept private."""
        acl = wafv2.CfnWebACL

        def seen(metric: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
            return acl.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True
            )

        def block(status: int) -> wafv2.CfnWebACL.RuleActionProperty:
            return acl.RuleActionProperty(
                block=acl.BlockActionProperty(
                    custom_response=acl.CustomResponseProperty(response_code=status)
                )
            )

        def managed(priority: int, group: str, **options) -> wafv2.CfnWebACL.RuleProperty:
            return acl.RuleProperty(
                name=group,
                priority=priority,
                override_action=acl.OverrideActionProperty(none={}),  # the group's own actions
                statement=acl.StatementProperty(
                    managed_rule_group_statement=acl.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS", name=group, **options
                    )
                ),
                visibility_config=seen(group),
            )

        def path(match: str, value: str, transformation: str = "NONE") -> wafv2.CfnWebACL.StatementProperty:
            return acl.StatementProperty(
                byte_match_statement=acl.ByteMatchStatementProperty(
                    field_to_match=acl.FieldToMatchProperty(uri_path={}),
                    positional_constraint=match,
                    search_string=value,
                    text_transformations=[acl.TextTransformationProperty(priority=0, type=transformation)],
                )
            )

        rules = [
            # The ALB's listener rule answers /readyz with a 404 too; this one also sees through
            # percent-encoding (/%72eadyz), which the ALB matches as written and gunicorn decodes.
            acl.RuleProperty(
                name="ReadinessNotPublic",
                priority=0,
                action=block(404),
                statement=path("EXACTLY", READINESS_PATH, "URL_DECODE"),
                visibility_config=seen("ReadinessNotPublic"),
            ),
            # waf_rate_limit(): above all the app allows one IP (see its docstring); a 429 like the app's.
            acl.RuleProperty(
                name="RatePerIp",
                priority=1,
                action=block(429),
                statement=acl.StatementProperty(
                    rate_based_statement=acl.RateBasedStatementProperty(
                        aggregate_key_type="IP",
                        limit=waf_rate_limit(),
                        evaluation_window_sec=WAF_WINDOW_SECONDS,
                    )
                ),
                visibility_config=seen("RatePerIp"),
            ),
            managed(2, "AWSManagedRulesAmazonIpReputationList"),
            managed(3, "AWSManagedRulesKnownBadInputsRuleSet"),
            # The common rule set blocks bodies over 8 KB (SizeRestrictions_BODY). A checkout is at
            # most ~5 KB (50 lines of 64-character SKUs and an email; the test measures it), but an
            # admin form (a changelist action on 100 selected orders) comes near: that rule only
            # counts and labels, and the next rule blocks its label outside the admin's path.
            managed(
                4,
                "AWSManagedRulesCommonRuleSet",
                rule_action_overrides=[
                    acl.RuleActionOverrideProperty(
                        name="SizeRestrictions_BODY", action_to_use=acl.RuleActionProperty(count={})
                    )
                ],
            ),
            acl.RuleProperty(
                name="BodySizeOutsideAdmin",
                priority=5,
                action=acl.RuleActionProperty(block={}),
                statement=acl.StatementProperty(
                    and_statement=acl.AndStatementProperty(
                        statements=[
                            acl.StatementProperty(
                                label_match_statement=acl.LabelMatchStatementProperty(
                                    scope="LABEL", key=BODY_SIZE_LABEL
                                )
                            ),
                            acl.StatementProperty(
                                not_statement=acl.NotStatementProperty(
                                    statement=path("STARTS_WITH", cdk.Fn.join("", ["/", admin_path]))
                                )
                            ),
                        ]
                    )
                ),
                visibility_config=seen("BodySizeOutsideAdmin"),
            ),
        ]
        return acl(
            self,
            "WebAcl",
            name=f"{name}-web",
            scope="REGIONAL",
            default_action=acl.DefaultActionProperty(allow={}),
            rules=rules,
            visibility_config=seen(f"{name}-web"),
        )


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
            "Oldest waiting order (s), unpublished orders and the relay's jobs",
            [emf("OldestWaitingOrderAge", "Maximum")],
            right=[emf("OutboxUnpublished", "Maximum")]
            + [emf("RelayJobs", Outcome=outcome) for outcome in ("published", "refused")],
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
        graph(
            "Sync checkout queue per minute (admitted, 503 checkout_queue)",
            [emf("SyncCheckoutQueue", Answer=a) for a in ("admitted", "queued")],
        ),
    )
    return board


def synth(shop: ShopSettings | None = None, stack_name: str | None = None, region: str | None = None) -> dict:
    """Synthesize the stack to a CloudFormation template (a dict), in-process, no CDK CLI.

    For `region`, else the AWS region of the environment (AWS_REGION, AWS_DEFAULT_REGION, the profile).
    """
    shop = shop or ShopSettings()
    region = region or os.environ.get("AWS_REGION") or boto3.session.Session().region_name
    if not region:
        raise ValueError("which region? set AWS_REGION (the ALB's access logs are granted per region)")
    app = cdk.App(analytics_reporting=False)
    stack = ShopStack(
        app,
        stack_name or shop.name,
        shop,
        env=cdk.Environment(region=region),
        synthesizer=cdk.BootstraplessSynthesizer(),
    )
    return app.synth().get_stack_by_name(stack.stack_name).template
