"""Deploy the shop to Amazon ECS on Fargate: SQS queues, task definitions, services, worker scaling.

One image (deploy/Dockerfile) runs three services, told apart by their command:

    web       gunicorn (gthread) on :8000, behind an existing ALB target group when given
    worker    celery -A config worker --concurrency=N   (threads pool; payments are I/O-bound)
    sweeper   python manage.py sweep_orders --every 15  (one small task)

The order of a first deploy (deploy/README.md has the details):

    python -m deploy.ecs queues                     # SQS queue + DLQ; prints their URLs
    python -m deploy.ecs cluster                    # the ECS cluster, if you have none
    python -m deploy.ecs render  ... > taskdefs.json  # look before you leap (no AWS calls)
    python -m deploy.ecs deploy  ... --migrate      # register, migrate, create/update the services
    python -m deploy.ecs scale-workers --count 10   # during the sale

boto3 only, and no Django: it runs on a laptop or in CI without the shop's settings. Every option
can come from an environment variable (shown in --help; ECS_*, never the app's own names, so a shell
set up for `make run` cannot leak local values into a deploy); AWS_ENDPOINT_URL or --endpoint-url points
every client at another endpoint, such as a moto server in the tests.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from config.timeouts import Timeouts
from queues.setup import ensure_queue_pair

ROLES = ("web", "worker", "sweeper")
WEB_PORT = 8000
SETTINGS_MODULE = "config.settings.production"
# Fargate's longest stop timeout: a worker's warm shutdown lets charges in flight finish and record
# their result (the rest come back through SQS, since tasks ack late).
WORKER_STOP_TIMEOUT = 120
# New services start with these; an existing service keeps its count unless one is given, so a
# deploy in the middle of a sale does not undo `scale-workers`.
DEFAULT_COUNTS = {"web": 2, "worker": 2, "sweeper": 1}


@dataclass
class TaskSettings:
    """What the three task definitions are made of."""

    image: str
    region: str
    execution_role_arn: str
    task_role_arn: str
    secret_key_arn: str
    database_url_arn: str
    payment_api_key_arn: str
    queue_url: str
    dlq_url: str
    allowed_hosts: str
    payment_provider_url: str
    app: str = "flashsale"
    concurrency: int = 20
    sweep_every: float = 15
    log_group: str | None = None
    cpu_architecture: str = "X86_64"
    sizes: dict[str, tuple[int, int]] = field(
        default_factory=lambda: {"web": (512, 1024), "worker": (512, 1024), "sweeper": (256, 512)}
    )
    extra_env: dict[str, str] = field(default_factory=dict)
    extra_secrets: dict[str, str] = field(default_factory=dict)

    @property
    def log_group_name(self) -> str:
        return self.log_group or f"/ecs/{self.app}"

    @property
    def queue_name(self) -> str:
        # The settings key the predefined queue by name and route tasks to it, so the name must
        # be the one in the URL.
        return urlsplit(self.queue_url).path.rstrip("/").rsplit("/", 1)[-1]


@dataclass
class ServiceSettings:
    """Where and how many: the cluster, its network, the load balancer, desired counts."""

    cluster: str
    subnets: list[str]
    security_groups: list[str]
    assign_public_ip: bool = False
    target_group_arn: str | None = None
    counts: dict[str, int | None] = field(default_factory=dict)


def family(app: str, role: str) -> str:
    """Return the task definition family, and service name, of one role."""
    return f"{app}-{role}"


def commands(settings: TaskSettings) -> dict[str, list[str]]:
    """Return each role's container command: config.processes defines them (their options come from
    the environment, see `environment`)."""
    return {role: ["python", "-m", "config.processes", role] for role in ROLES}


def health_check() -> dict:
    """Return the web container's health check: GET /healthz must answer 2xx.

    /healthz is answered before Django's Host check and without the database (config/health.py).
    """
    script = f"import urllib.request as r; r.urlopen('http://127.0.0.1:{WEB_PORT}/healthz', timeout=4)"
    return {
        "command": ["CMD", "python", "-c", script],
        "interval": 30,
        "timeout": 5,
        "retries": 3,
        "startPeriod": 60,
    }


def environment(settings: TaskSettings, role: str) -> dict[str, str]:
    """Return the plain environment of one role's container (secrets go separately)."""
    env = {
        "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
        "DJANGO_ALLOWED_HOSTS": settings.allowed_hosts,
        "AWS_DEFAULT_REGION": settings.region,
        "SQS_QUEUE_NAME": settings.queue_name,
        "SQS_QUEUE_URL": settings.queue_url,
        "SQS_DLQ_URL": settings.dlq_url,
        "PAYMENT_PROVIDER_URL": settings.payment_provider_url,
        "PYTHONUNBUFFERED": "1",
    }
    if role == "worker":
        env["WORKER_CONCURRENCY"] = str(settings.concurrency)
    if role == "sweeper":
        env["SWEEP_INTERVAL_SECONDS"] = f"{settings.sweep_every:g}"
    env.update(settings.extra_env)
    return env


def secrets(settings: TaskSettings) -> dict[str, str]:
    """Return the secret variables and the Secrets Manager or SSM parameter ARNs they come from."""
    found = {
        "DJANGO_SECRET_KEY": settings.secret_key_arn,
        "DATABASE_URL": settings.database_url_arn,
        "PAYMENT_PROVIDER_API_KEY": settings.payment_api_key_arn,
    }
    found.update(settings.extra_secrets)
    return found


def task_definitions(settings: TaskSettings) -> dict[str, dict]:
    """Return the three task definitions, keyed by role, as RegisterTaskDefinition arguments."""
    secret_vars = secrets(settings)
    definitions = {}
    for role, command in commands(settings).items():
        env = environment(settings, role)
        clash = sorted(set(env) & set(secret_vars))
        if clash:
            raise ValueError(f"set as both plain and secret variables: {', '.join(clash)}")
        if "SQS_ENDPOINT_URL" in env:
            # On AWS the SQS endpoint must come from boto3 and the region, never a local emulator.
            raise ValueError("SQS_ENDPOINT_URL is for local emulators; leave it unset on AWS")
        container = {
            "name": role,
            "image": settings.image,
            "essential": True,
            "command": command,
            "environment": [{"name": k, "value": v} for k, v in sorted(env.items())],
            "secrets": [{"name": k, "valueFrom": v} for k, v in sorted(secret_vars.items())],
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": settings.log_group_name,
                    "awslogs-region": settings.region,
                    "awslogs-stream-prefix": role,
                },
            },
        }
        if role == "web":
            container["portMappings"] = [{"containerPort": WEB_PORT, "protocol": "tcp"}]
            container["healthCheck"] = health_check()
        if role == "worker":
            container["stopTimeout"] = WORKER_STOP_TIMEOUT
        cpu, memory = settings.sizes[role]
        definitions[role] = {
            "family": family(settings.app, role),
            "networkMode": "awsvpc",
            "requiresCompatibilities": ["FARGATE"],
            "cpu": str(cpu),
            "memory": str(memory),
            "runtimePlatform": {
                "cpuArchitecture": settings.cpu_architecture,
                "operatingSystemFamily": "LINUX",
            },
            "executionRoleArn": settings.execution_role_arn,
            "taskRoleArn": settings.task_role_arn,
            "containerDefinitions": [container],
        }
    return definitions


def client(service: str, region: str | None, endpoint_url: str | None = None):
    """Return a boto3 client, pointed at `endpoint_url` when one is given (e.g. moto)."""
    return boto3.session.Session(region_name=region).client(service, endpoint_url=endpoint_url or None)


def ensure_queues(
    sqs, *, queue_name: str, dlq_name: str, visibility_timeout: int, max_receive_count: int
) -> dict[str, str]:
    """Create or converge the payment queue and its DLQ; return their URLs and ARNs."""
    urls = ensure_queue_pair(
        sqs,
        queue_name=queue_name,
        dlq_name=dlq_name,
        visibility_timeout=visibility_timeout,
        max_receive_count=max_receive_count,
    )
    arns = {
        f"{kind}_arn": sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        for kind, url in urls.items()
    }
    return {**urls, **arns}


def ensure_log_group(logs, name: str, retention_days: int) -> None:
    """Create the tasks' log group if missing, so the execution role needs no logs:CreateLogGroup."""
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=name)
    logs.put_retention_policy(logGroupName=name, retentionInDays=retention_days)


def register(ecs, logs, settings: TaskSettings, *, log_retention_days: int = 30) -> dict[str, str]:
    """Register a new revision of each task definition; return their ARNs by role."""
    ensure_log_group(logs, settings.log_group_name, log_retention_days)
    return {
        role: ecs.register_task_definition(**definition)["taskDefinition"]["taskDefinitionArn"]
        for role, definition in task_definitions(settings).items()
    }


def network_configuration(services: ServiceSettings) -> dict:
    """Return the awsvpc network configuration shared by the services and one-off tasks."""
    return {
        "awsvpcConfiguration": {
            "subnets": services.subnets,
            "securityGroups": services.security_groups,
            "assignPublicIp": "ENABLED" if services.assign_public_ip else "DISABLED",
        }
    }


def active_service(ecs, cluster: str, name: str) -> dict | None:
    """Return the service if it exists and is not being deleted, else None."""
    found = ecs.describe_services(cluster=cluster, services=[name])["services"]
    return next((s for s in found if s["status"] == "ACTIVE"), None)


def deploy_services(ecs, app: str, services: ServiceSettings, task_arns: dict[str, str]) -> dict[str, dict]:
    """Point each service at its new task definition, creating the ones that do not exist yet."""
    summary = {}
    for role in ROLES:
        name = family(app, role)
        current = active_service(ecs, services.cluster, name)
        wanted = services.counts.get(role)
        common = {
            "cluster": services.cluster,
            "taskDefinition": task_arns[role],
            "networkConfiguration": network_configuration(services),
            # Roll back by itself when new tasks keep failing (a bad image, a missing secret).
            "deploymentConfiguration": {
                "deploymentCircuitBreaker": {"enable": True, "rollback": True},
                "minimumHealthyPercent": 100,
                "maximumPercent": 200,
            },
        }
        if role == "web" and services.target_group_arn:
            common["loadBalancers"] = [
                {
                    "targetGroupArn": services.target_group_arn,
                    "containerName": "web",
                    "containerPort": WEB_PORT,
                }
            ]
            common["healthCheckGracePeriodSeconds"] = 60
        if current is None:
            count = DEFAULT_COUNTS[role] if wanted is None else wanted
            ecs.create_service(
                serviceName=name, desiredCount=count, launchType="FARGATE", propagateTags="SERVICE", **common
            )
            action = "created"
        else:
            count = current["desiredCount"] if wanted is None else wanted
            ecs.update_service(service=name, desiredCount=count, **common)
            action = "updated"
        summary[role] = {
            "service": name,
            "action": action,
            "taskDefinition": task_arns[role],
            "desiredCount": count,
        }
    return summary


def run_manage(
    ecs, app: str, services: ServiceSettings, args: Sequence[str], *, wait: bool = True
) -> dict[str, object]:
    """Run `python manage.py ARGS` once in a task made from the web task definition."""
    started = ecs.run_task(
        cluster=services.cluster,
        taskDefinition=family(app, "web"),  # the latest active revision
        launchType="FARGATE",
        networkConfiguration=network_configuration(services),
        overrides={"containerOverrides": [{"name": "web", "command": ["python", "manage.py", *args]}]},
        startedBy="deploy.ecs",
    )
    if started.get("failures") or not started.get("tasks"):
        raise RuntimeError(f"could not start the task: {started.get('failures')}")
    task_arn = started["tasks"][0]["taskArn"]
    if not wait:
        return {"task": task_arn, "exitCode": None}
    ecs.get_waiter("tasks_stopped").wait(
        cluster=services.cluster, tasks=[task_arn], WaiterConfig={"Delay": 6, "MaxAttempts": 200}
    )
    task = ecs.describe_tasks(cluster=services.cluster, tasks=[task_arn])["tasks"][0]
    exit_code = task["containers"][0].get("exitCode")
    if exit_code != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} ended with {exit_code}: {task.get('stoppedReason')}")
    return {"task": task_arn, "exitCode": exit_code}


def scale_workers(ecs, app: str, cluster: str, count: int) -> int:
    """Set the worker service's desired count; return it as ECS now reports it."""
    if count < 0:
        raise ValueError("the worker count cannot be negative")
    service = ecs.update_service(cluster=cluster, service=family(app, "worker"), desiredCount=count)[
        "service"
    ]
    return service["desiredCount"]


# --- Command line -------------------------------------------------------------------------------


def option(parser, flag: str, *, env: str | None = None, required: bool = False, default=None, **kwargs):
    """Add an option whose default may come from an environment variable, named in its help."""
    value = os.environ.get(env) if env else None
    if value is not None and value != "":
        default = value
    help_text = kwargs.pop("help", "")
    if env:
        help_text += f" [env {env}]"
    parser.add_argument(
        flag, default=default, required=required and default is None, help=help_text, **kwargs
    )


def csv_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def key_values(pairs: Sequence[str]) -> dict[str, str]:
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {pair!r}")
        result[key] = value
    return result


def size(text: str) -> tuple[int, int]:
    cpu, sep, memory = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected CPU:MEMORY such as 512:1024, got {text!r}")
    return int(cpu), int(memory)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.ecs",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Each subcommand has --help. Output is JSON on stdout.",
    )

    aws = argparse.ArgumentParser(add_help=False)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    option(
        aws,
        "--region",
        default=region,
        required=True,
        help="AWS region. [env AWS_REGION, AWS_DEFAULT_REGION]",
    )
    option(aws, "--endpoint-url", env="AWS_ENDPOINT_URL", help="Send every AWS call here (moto, LocalStack).")
    option(
        aws, "--app", env="ECS_APP", default="flashsale", help="Name prefix of families, services and logs."
    )

    tasks = argparse.ArgumentParser(add_help=False)
    option(
        tasks,
        "--image",
        env="ECS_IMAGE",
        required=True,
        help="Image URI, e.g. <account>.dkr.ecr.<region>.amazonaws.com/flashsale:<git sha>.",
    )
    option(
        tasks,
        "--execution-role-arn",
        env="ECS_EXECUTION_ROLE_ARN",
        required=True,
        help="Role ECS uses to pull the image, read the secrets and write logs.",
    )
    option(
        tasks,
        "--task-role-arn",
        env="ECS_TASK_ROLE_ARN",
        required=True,
        help="Role the shop runs as (SQS access).",
    )
    option(
        tasks,
        "--secret-key-arn",
        env="ECS_SECRET_KEY_ARN",
        required=True,
        help="Secrets Manager secret or SSM parameter ARN of DJANGO_SECRET_KEY.",
    )
    option(
        tasks,
        "--database-url-arn",
        env="ECS_DATABASE_URL_ARN",
        required=True,
        help="Secrets Manager secret or SSM parameter ARN of DATABASE_URL.",
    )
    option(
        tasks,
        "--payment-api-key-arn",
        env="ECS_PAYMENT_API_KEY_ARN",
        required=True,
        help="Secrets Manager secret or SSM parameter ARN of PAYMENT_PROVIDER_API_KEY.",
    )
    option(
        tasks,
        "--queue-url",
        env="ECS_QUEUE_URL",
        required=True,
        help="The payment queue's URL (`queues` prints it).",
    )
    option(tasks, "--dlq-url", env="ECS_DLQ_URL", required=True, help="The dead-letter queue's URL.")
    option(
        tasks,
        "--allowed-hosts",
        env="ECS_ALLOWED_HOSTS",
        required=True,
        help="Comma-separated host names the shop answers to.",
    )
    option(
        tasks,
        "--payment-provider-url",
        env="ECS_PAYMENT_PROVIDER_URL",
        required=True,
        help="The payment processor's base URL.",
    )
    option(
        tasks,
        "--concurrency",
        env="ECS_WORKER_CONCURRENCY",
        type=int,
        default=20,
        help="Threads per worker task (default 20).",
    )
    option(
        tasks,
        "--sweep-every",
        env="ECS_SWEEP_EVERY",
        type=float,
        default=15,
        help="Seconds between sweeps (default 15).",
    )
    option(tasks, "--log-group", env="ECS_LOG_GROUP", help="CloudWatch log group (default /ecs/<app>).")
    option(
        tasks,
        "--cpu-architecture",
        env="ECS_CPU_ARCHITECTURE",
        default="X86_64",
        choices=["X86_64", "ARM64"],
        help="The image's architecture.",
    )
    for role, (cpu, memory) in TaskSettings.__dataclass_fields__["sizes"].default_factory().items():
        option(
            tasks,
            f"--{role}-size",
            type=size,
            default=(cpu, memory),
            help=f"Fargate CPU:MEMORY of {role} (default {cpu}:{memory}).",
        )
    tasks.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="Another plain variable (repeatable).",
    )
    tasks.add_argument(
        "--secret",
        action="append",
        default=[],
        metavar="NAME=ARN",
        help="Another secret variable (repeatable).",
    )

    cluster = argparse.ArgumentParser(add_help=False)
    option(cluster, "--cluster", env="ECS_CLUSTER", required=True, help="ECS cluster name or ARN.")

    network = argparse.ArgumentParser(add_help=False)
    option(
        network,
        "--subnets",
        env="ECS_SUBNETS",
        type=csv_list,
        required=True,
        help="Comma-separated subnet ids (private, with a route to SQS and the provider).",
    )
    option(
        network,
        "--security-groups",
        env="ECS_SECURITY_GROUPS",
        type=csv_list,
        required=True,
        help="Comma-separated security group ids.",
    )
    network.add_argument(
        "--assign-public-ip",
        action="store_true",
        help="Give tasks public IPs (public subnets without a NAT).",
    )

    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    queues = sub.add_parser("queues", parents=[aws], help="Create or converge the SQS queue and its DLQ.")
    option(
        queues, "--queue-name", env="ECS_QUEUE_NAME", default="flashsale-payments", help="Payment queue name."
    )
    option(queues, "--dlq-name", env="ECS_DLQ_NAME", help="Dead-letter queue name (default <queue>-dlq).")
    option(
        queues,
        "--visibility-timeout",
        env="ECS_VISIBILITY_TIMEOUT",
        type=int,
        default=Timeouts.derive().visibility,
        help=(
            "Seconds; must exceed the order lease (default %(default)s: the app's default timeout "
            "chain, config/timeouts.py)."
        ),
    )
    option(
        queues,
        "--max-receive-count",
        env="ECS_MAX_RECEIVE_COUNT",
        type=int,
        default=5,
        help="Receives before a message is dead-lettered (default 5).",
    )

    sub.add_parser("cluster", parents=[aws, cluster], help="Create the ECS cluster (idempotent).")
    sub.add_parser(
        "render", parents=[aws, tasks], help="Print the three task definitions as JSON; calls no AWS API."
    )
    register_cmd = sub.add_parser(
        "register", parents=[aws, tasks], help="Register the three task definitions."
    )
    deploy_cmd = sub.add_parser(
        "deploy",
        parents=[aws, tasks, cluster, network],
        help="Register the task definitions, then create or update the three services.",
    )
    for cmd in (register_cmd, deploy_cmd):
        cmd.add_argument(
            "--log-retention-days", type=int, default=30, help="CloudWatch retention (default 30)."
        )
    option(
        deploy_cmd,
        "--target-group-arn",
        env="ECS_TARGET_GROUP_ARN",
        help="Existing ALB target group (type ip, port 8000) for web.",
    )
    for role in ROLES:
        deploy_cmd.add_argument(
            f"--{role}-count",
            type=int,
            help=f"Desired {role} tasks (new service: {DEFAULT_COUNTS[role]}; existing: unchanged).",
        )
    deploy_cmd.add_argument(
        "--migrate",
        action="store_true",
        help="Run `manage.py migrate` on the new image before updating the services.",
    )
    deploy_cmd.add_argument("--wait", action="store_true", help="Wait until the services are stable.")

    manage = sub.add_parser(
        "manage",
        parents=[aws, cluster, network],
        help="Run `python manage.py ARGS` once as a Fargate task (migrate, dlq --redrive, ...).",
    )
    manage.add_argument("--no-wait", action="store_true", help="Return once the task has started.")
    manage.add_argument("manage_args", nargs=argparse.REMAINDER, metavar="ARGS")

    scale = sub.add_parser(
        "scale-workers", parents=[aws, cluster], help="Set the worker service's desired count."
    )
    scale.add_argument(
        "--count",
        type=int,
        required=True,
        help="Worker tasks wanted (workers = rate × latency; see deploy/README.md).",
    )
    return parser


def task_settings(args: argparse.Namespace) -> TaskSettings:
    return TaskSettings(
        image=args.image,
        region=args.region,
        execution_role_arn=args.execution_role_arn,
        task_role_arn=args.task_role_arn,
        secret_key_arn=args.secret_key_arn,
        database_url_arn=args.database_url_arn,
        payment_api_key_arn=args.payment_api_key_arn,
        queue_url=args.queue_url,
        dlq_url=args.dlq_url,
        allowed_hosts=args.allowed_hosts,
        payment_provider_url=args.payment_provider_url,
        app=args.app,
        concurrency=int(args.concurrency),
        sweep_every=float(args.sweep_every),
        log_group=args.log_group,
        cpu_architecture=args.cpu_architecture,
        sizes={role: getattr(args, f"{role}_size") for role in ROLES},
        extra_env=key_values(args.env),
        extra_secrets=key_values(args.secret),
    )


def service_settings(args: argparse.Namespace) -> ServiceSettings:
    return ServiceSettings(
        cluster=args.cluster,
        subnets=args.subnets,
        security_groups=args.security_groups,
        assign_public_ip=args.assign_public_ip,
        target_group_arn=getattr(args, "target_group_arn", None),
        counts={role: getattr(args, f"{role}_count", None) for role in ROLES},
    )


def run(args: argparse.Namespace) -> object:
    """Carry out one parsed command; return what it prints."""
    aws = {"region": args.region, "endpoint_url": args.endpoint_url}
    if args.command == "queues":
        return ensure_queues(
            client("sqs", **aws),
            queue_name=args.queue_name,
            dlq_name=args.dlq_name or f"{args.queue_name}-dlq",
            visibility_timeout=int(args.visibility_timeout),
            max_receive_count=int(args.max_receive_count),
        )
    if args.command == "cluster":
        ecs = client("ecs", **aws)
        created = ecs.create_cluster(
            clusterName=args.cluster, settings=[{"name": "containerInsights", "value": "enabled"}]
        )
        return {"cluster": created["cluster"]["clusterArn"]}
    if args.command == "render":
        return task_definitions(task_settings(args))
    if args.command == "register":
        return register(
            client("ecs", **aws),
            client("logs", **aws),
            task_settings(args),
            log_retention_days=args.log_retention_days,
        )
    if args.command == "deploy":
        ecs, services = client("ecs", **aws), service_settings(args)
        if not any(
            c["status"] == "ACTIVE" for c in ecs.describe_clusters(clusters=[services.cluster])["clusters"]
        ):
            raise RuntimeError(
                f"no active cluster {services.cluster!r}; create it first (`cluster` subcommand)"
            )
        arns = register(
            ecs, client("logs", **aws), task_settings(args), log_retention_days=args.log_retention_days
        )
        result: dict[str, object] = {}
        if args.migrate:
            result["migrate"] = run_manage(ecs, args.app, services, ["migrate", "--noinput"])
        result["services"] = deploy_services(ecs, args.app, services, arns)
        if args.wait:
            names = [family(args.app, role) for role in ROLES]
            ecs.get_waiter("services_stable").wait(cluster=services.cluster, services=names)
        return result
    if args.command == "manage":
        manage_args = [a for a in args.manage_args if a != "--"]
        if not manage_args:
            raise ValueError("give the manage.py command, e.g. `manage -- migrate --noinput`")
        return run_manage(
            client("ecs", **aws), args.app, service_settings(args), manage_args, wait=not args.no_wait
        )
    if args.command == "scale-workers":
        count = scale_workers(client("ecs", **aws), args.app, args.cluster, args.count)
        return {"service": family(args.app, "worker"), "desiredCount": count}
    raise AssertionError(args.command)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = run(args)
    except (ValueError, RuntimeError, argparse.ArgumentTypeError, BotoCoreError, ClientError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    json.dump(result, sys.stdout, indent=2, default=str)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
