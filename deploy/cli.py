"""What a declarative stack cannot do for itself: build and push the image, roll the stack with live
progress (migrations first), show status, scale bounds, tear down; plus sizing and cost.

From an empty account (deploy/README.md walks through it):

    python -m deploy build  --tag v1                      # ECR repository, docker build, push
    python -m deploy deploy --tag v1 --certificate-arn ... --domain shop.example.com \\
        --admin-path staff-7f3a9c/ \\
        --provider-url https://api.processor.example --provider-key-arn arn:...:secret:...
    python -m deploy manage -- seed_catalogue             # any manage.py command as a one-off task
    python -m deploy status                               # services, queue, DLQ, alarms
    python -m deploy teardown --yes

boto3 talks to AWS (AWS_ENDPOINT_URL points it at a moto server in the tests); the stack is
synthesized in-process by the CDK (Node.js needed) and applied with CloudFormation change sets,
so no `cdk` CLI and no `cdk bootstrap`.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import time
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

from deploy import cost, plan
from deploy.settings import DEFAULT_PAYMENT_LATENCY, ShopSettings
from sizing import recommend

ROOT = Path(__file__).resolve().parents[1]
TERMINAL = ("_COMPLETE", "_FAILED")
DONE_OK = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "DELETE_COMPLETE", "IMPORT_COMPLETE")


def client(service: str):
    return boto3.client(service, endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)


def say(*parts) -> None:
    print(*parts, flush=True)


# --- sizing ------------------------------------------------------------------------------------------
def sizing_from(args, rate: float | None = None) -> recommend.Recommendation:
    """The one recommendation (sizing/recommend.py) at this stack's --latency: with --report, the
    efficiency of the lab's no-limit run nearest --concurrency threads (a task's one process)."""
    report = None
    try:
        if args.report:
            report = recommend.latest_report(ROOT) if args.report == "latest" else Path(args.report)
        return recommend.recommend(
            rate or 1.0,
            args.latency,
            getattr(args, "provider_limit", 0),
            report=report,
            near_workers=args.concurrency,
        )
    except (ValueError, recommend.ResultsError) as exc:
        raise SystemExit(str(exc)) from exc


def per_worker_rate(args) -> tuple[float, str]:
    """Orders/s one worker thread pays: the lab's measured efficiency / latency, else the ideal."""
    advice = sizing_from(args)
    if advice.run is None:
        return advice.per_thread_rate, f"ideal 1/{args.latency:g} s (no lab report given)"
    return advice.per_thread_rate, f"measured: {advice.run.name} in {advice.report}"


def shop_from(args) -> ShopSettings:
    rate, _ = per_worker_rate(args)
    return ShopSettings(
        name=args.name,
        worker_concurrency=args.concurrency,
        min_workers=args.min_workers,
        max_workers=args.max_workers,
        per_worker_rate=rate,
        acceptable_wait_seconds=args.acceptable_wait,
        worker_size=_size(args.worker_size),
        lambda_memory_mb=args.lambda_memory,
    )


def _size(text: str) -> tuple[int, int]:
    cpu, memory = text.split(":")
    return int(cpu), int(memory)


# --- stack helpers -------------------------------------------------------------------------------------
def outputs(name: str) -> dict[str, str]:
    stack = client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def stack_exists(name: str) -> bool:
    try:
        status = client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return False
        raise
    return status != "DELETE_COMPLETE"


def stream_events(name: str, since: float, poll: float = 5.0) -> str:
    """Print the stack's events as they happen until it reaches a final status; return that status."""
    cfn, seen = client("cloudformation"), set()
    while True:
        try:
            events = cfn.describe_stack_events(StackName=name)["StackEvents"]
        except ClientError as exc:
            if "does not exist" in str(exc):
                return "DELETE_COMPLETE"  # deleted between two polls
            raise
        for event in reversed(events):
            if event["EventId"] in seen or event["Timestamp"].timestamp() < since - 1:
                continue
            seen.add(event["EventId"])
            reason = f"  {event['ResourceStatusReason']}" if event.get("ResourceStatusReason") else ""
            say(
                f"{event['Timestamp']:%H:%M:%S}  {event['ResourceStatus']:<28} "
                f"{event['LogicalResourceId']}{reason}"
            )
        try:
            status = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
        except ClientError:
            return "DELETE_COMPLETE"  # gone
        if status.endswith(TERMINAL) and "IN_PROGRESS" not in status:
            return status
        time.sleep(poll)


def apply(name: str, template: dict, parameters: dict[str, str | None], *, dry_run: bool) -> str:
    """Create a change set (CREATE or UPDATE), print it; unless dry-run, execute it and stream events."""
    cfn = client("cloudformation")
    exists = stack_exists(name)
    params = [
        {"ParameterKey": k, "UsePreviousValue": True}
        if v is None
        else {"ParameterKey": k, "ParameterValue": v}
        for k, v in parameters.items()
        if v is not None or exists
    ]
    change = f"{name}-{int(time.time())}"
    cfn.create_change_set(
        StackName=name,
        ChangeSetName=change,
        ChangeSetType="UPDATE" if exists else "CREATE",
        TemplateBody=json.dumps(template),
        Parameters=params,
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
    )
    description = _wait_change_set(cfn, name, change)
    changes = description.get("Changes", [])
    say(f"change set {change}: {len(changes)} change(s)")
    for item in changes:
        rc = item["ResourceChange"]
        say(f"  {rc['Action']:<7} {rc['ResourceType']:<45} {rc['LogicalResourceId']}")
    if dry_run or not changes:
        if description["Status"] != "FAILED" or not changes:
            cfn.delete_change_set(StackName=name, ChangeSetName=change)
        say("dry run: nothing applied" if dry_run else "no changes")
        return "DRY_RUN" if dry_run else "NO_CHANGES"
    started = time.time()
    cfn.execute_change_set(StackName=name, ChangeSetName=change)
    status = stream_events(name, started)
    if status not in DONE_OK:
        raise SystemExit(f"stack {name}: {status}")
    return status


def _wait_change_set(cfn, name: str, change: str) -> dict:
    for _ in range(120):
        description = cfn.describe_change_set(StackName=name, ChangeSetName=change)
        if description["Status"] in ("CREATE_COMPLETE", "FAILED"):
            return description
        time.sleep(2)
    raise SystemExit(f"change set {change} did not settle")


# The one-off task definitions: `migrate` (the database and Django's secret only, on the next image)
# and `ops` (manage.py commands: the DLQ, the provider's key for reconcile), each with its own role.
ONE_OFFS = {"migrate": "MigrateTaskDefinition", "ops": "OpsTaskDefinition"}


def run_task(name: str, command: list[str] | None, *, wait: bool = True, role: str = "migrate") -> int:
    """Run a one-off task (`role`: migrate or ops) once, with `command` if given; return its exit code."""
    out, ecs = outputs(name), client("ecs")
    if ONE_OFFS[role] not in out:  # a stack from before the ops task definition: its migrate one
        say(f"stack {name} has no {ONE_OFFS[role]} yet (deploy to add it); running on the migrate task")
        role = "migrate"
    overrides = {"containerOverrides": [{"name": role, "command": command}]} if command else {}
    task = ecs.run_task(
        cluster=out["ClusterName"],
        taskDefinition=out[ONE_OFFS[role]],
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": out["TaskSubnets"].split(","),
                "securityGroups": [out["TaskSecurityGroup"]],
                "assignPublicIp": "DISABLED",
            }
        },
        overrides=overrides,
        startedBy="python -m deploy",
    )["tasks"][0]
    say(f"task {task['taskArn']}: {' '.join(command or ['manage.py migrate --noinput'])}")
    if not wait:
        return 0
    ecs.get_waiter("tasks_stopped").wait(cluster=out["ClusterName"], tasks=[task["taskArn"]])
    done = ecs.describe_tasks(cluster=out["ClusterName"], tasks=[task["taskArn"]])["tasks"][0]
    code = done["containers"][0].get("exitCode", 1)
    say(f"task stopped: exit code {code} ({done.get('stoppedReason', '')})")
    return int(code)


# --- steps ---------------------------------------------------------------------------------------------
def cmd_synth(args) -> int:
    from deploy.stack import synth  # the CDK: seconds to import, only for the steps that synthesize

    try:
        template = synth(shop_from(args))
    except ValueError as exc:  # no region, or settings the stack refuses: say which, no traceback
        raise SystemExit(f"synth: {exc}") from None
    text = json.dumps(template, indent=1)
    if args.out:
        Path(args.out).write_text(text)
        say(f"wrote {args.out}: {len(template['Resources'])} resources")
    else:
        say(text)
    return 0


def cmd_build(args) -> int:
    ecr = client("ecr")
    try:
        repo = ecr.describe_repositories(repositoryNames=[args.repository])["repositories"][0]
    except ClientError:
        if args.dry_run:
            say(f"would create ECR repository {args.repository}")
            repo = {"repositoryUri": f"<account>.dkr.ecr.<region>.amazonaws.com/{args.repository}"}
        else:
            repo = ecr.create_repository(
                repositoryName=args.repository, imageScanningConfiguration={"scanOnPush": True}
            )["repository"]
    uri = f"{repo['repositoryUri']}:{args.tag}"
    commands = [
        ["docker", "build", "--platform", args.platform, "-f", "deploy/Dockerfile", "-t", uri, "."],
        ["docker", "push", uri],
    ]
    for command in commands:
        say("$", " ".join(command))
        if not args.dry_run:
            if command[1] == "push":
                auth = ecr.get_authorization_token()["authorizationData"][0]
                user, password = base64.b64decode(auth["authorizationToken"]).decode().split(":", 1)
                subprocess.run(
                    ["docker", "login", "-u", user, "--password-stdin", auth["proxyEndpoint"]],
                    input=password,
                    text=True,
                    check=True,
                )
            subprocess.run(command, cwd=ROOT, check=True)
    return 0


def cmd_deploy(args) -> int:
    from deploy.stack import synth

    shop = shop_from(args)
    template = synth(shop, args.name)
    say(
        f"synthesized {len(template['Resources'])} resources; "
        f"worker backlog target {shop.backlog_target}/task"
    )
    given = {
        "ImageRepository": args.repository,
        "CertificateArn": args.certificate_arn,
        "DomainName": args.domain,
        "AdminPath": args.admin_path,
        "PaymentProviderUrl": args.provider_url,
        "PaymentApiKeySecretArn": args.provider_key_arn,
        "Consumer": args.consumer,
    }
    if not stack_exists(args.name):
        given["ImageRepository"] = args.repository or "flashsale"
        missing = [k for k, v in given.items() if v is None and k != "Consumer"]
        if missing:
            raise SystemExit(f"a new stack needs: {', '.join(missing)} ({_flags(missing)})")
        apply(
            args.name,
            template,
            {**given, "ImageTag": args.tag, "MigrationImageTag": args.tag},
            dry_run=args.dry_run,
        )
        if not args.dry_run:
            return _migrate_or_fail(args.name)
        return 0
    # A parameter the template gained since the stack was made (AdminPath) has no previous value
    # to keep: it must be given (Consumer has a default, which the template then applies).
    previous = _stack_parameters(args.name)
    if missing := [k for k, v in given.items() if v is None and k not in previous and k != "Consumer"]:
        raise SystemExit(f"stack {args.name} has no {', '.join(missing)} yet: pass {_flags(missing)}")
    given = {k: v for k, v in given.items() if v is not None or k in previous}
    # Migrations before the services roll: first only the migrate task gets the new image (and a
    # new parameter its value: there is no previous one to keep)...
    say("1/3 migrate task definition on the new image")
    keep = {k: None if k in previous else v for k, v in given.items()} | {"ImageTag": None}
    apply(args.name, template, {**keep, "MigrationImageTag": args.tag}, dry_run=args.dry_run)
    if not args.dry_run:
        say("2/3 migrations")
        _migrate_or_fail(args.name)
    say("3/3 services (and any other change) roll to the new image")
    apply(
        args.name,
        template,
        {**given, "ImageTag": args.tag, "MigrationImageTag": args.tag},
        dry_run=args.dry_run,
    )
    return 0


def _stack_parameters(name: str) -> dict[str, str | None]:
    stack = client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
    return {p["ParameterKey"]: p.get("ParameterValue") for p in stack.get("Parameters", [])}


def _flags(parameters: list[str]) -> str:
    flags = {
        "ImageRepository": "--repository", "CertificateArn": "--certificate-arn", "DomainName": "--domain",
        "AdminPath": "--admin-path", "PaymentProviderUrl": "--provider-url",
        "PaymentApiKeySecretArn": "--provider-key-arn",
    }  # fmt: skip
    return ", ".join(flags.get(p, p) for p in parameters)


def _migrate_or_fail(name: str) -> int:
    if run_task(name, None) != 0:
        raise SystemExit("migrations failed; the services still run the previous image")
    return 0


def cmd_migrate(args) -> int:
    return run_task(args.name, None)


def cmd_manage(args) -> int:
    command = [c for c in args.command if c != "--"]
    return run_task(args.name, ["python", "manage.py", *command], wait=not args.no_wait, role="ops")


def cmd_status(args) -> int:
    cfn = client("cloudformation")
    stack = cfn.describe_stacks(StackName=args.name)["Stacks"][0]
    out = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    params = {p["ParameterKey"]: p.get("ParameterValue") for p in stack.get("Parameters", [])}
    say(
        f"stack {args.name}: {stack['StackStatus']}  consumer {params.get('Consumer', '?')}  "
        f"image {params.get('ImageTag', '?')}"
    )
    if "AdminPath" in params:
        say(f"admin https://{params.get('DomainName', '?')}/{params['AdminPath']}")
    if "DatabaseProxyEndpoint" in out:
        say(f"database through RDS Proxy {out['DatabaseProxyEndpoint']}")
    services = [out[k] for k in ("WebService", "WorkerService", "RelayService", "SweeperService") if k in out]
    if services:
        found = client("ecs").describe_services(cluster=out["ClusterName"], services=services)["services"]
        for s in found:
            say(
                f"service {s['serviceName']:<24} desired {s['desiredCount']:>3}  "
                f"running {s['runningCount']:>3}  "
                f"pending {s.get('pendingCount', 0):>3}"
            )
    scaling = client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="ecs", ResourceIds=[f"service/{out.get('ClusterName')}/{out.get('WorkerService')}"]
    )["ScalableTargets"]
    for target in scaling:
        say(
            f"worker scaling: min {target['MinCapacity']}  max {target['MaxCapacity']}  "
            f"backlog target {out.get('WorkerBacklogTarget', '?')}/task"
        )
    sqs = client("sqs")
    for label, key in (("queue", "QueueUrl"), ("DLQ", "DlqUrl")):
        if key in out:
            a = sqs.get_queue_attributes(QueueUrl=out[key], AttributeNames=["All"])["Attributes"]
            say(
                f"{label:<5} {out[key].rsplit('/', 1)[-1]:<26} "
                f"waiting {a['ApproximateNumberOfMessages']:>6}  "
                f"in flight {a['ApproximateNumberOfMessagesNotVisible']:>6}"
            )
    alarms = client("cloudwatch").describe_alarms(AlarmNamePrefix=f"{args.name}-")["MetricAlarms"]
    for alarm in alarms:
        say(f"alarm {alarm['AlarmName']:<36} {alarm['StateValue']}")
    return 0


def cmd_scale(args) -> int:
    """Change the worker autoscaling bounds now (ahead of a sale); the next deploy restores the stack's."""
    out = outputs(args.name)
    client("application-autoscaling").register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=f"service/{out['ClusterName']}/{out['WorkerService']}",
        ScalableDimension="ecs:service:DesiredCount",
        MinCapacity=args.min,
        MaxCapacity=args.max,
    )
    say(f"worker scaling bounds: min {args.min}  max {args.max}")
    return 0


def cmd_teardown(args) -> int:
    if not args.yes:
        raise SystemExit(
            f"this deletes stack {args.name} and its database (a final snapshot is kept); add --yes"
        )
    started = time.time()
    client("cloudformation").delete_stack(StackName=args.name)
    status = stream_events(args.name, started, poll=args.poll)
    say(
        f"stack {args.name}: {status}; the ECR repository, the database snapshot and the access-log "
        "bucket remain (a database with deletion protection on stops the delete: turn it off first)"
    )
    return 0 if status == "DELETE_COMPLETE" else 1


def cmd_recommend(args) -> int:
    """`manage.py recommend_workers`'s recommendation (the same code), then this stack's tasks."""
    if args.rate:
        for _, line in sizing_from(args, args.rate).lines():
            say(line)
    shop = shop_from(args)
    _, source = per_worker_rate(args)
    say(f"per worker thread: {shop.per_worker_rate:.3f} orders/s ({source})")
    say(
        f"per task: {shop.worker_concurrency} threads × {shop.per_worker_rate:.3f} "
        f"= {shop.task_rate:.2f} orders/s"
    )
    say(
        f"backlog target: {shop.acceptable_wait_seconds} s acceptable wait × {shop.task_rate:.2f} = "
        f"{shop.backlog_target} messages per task"
    )
    if args.rate:
        tasks = -(-args.rate // shop.task_rate)
        say(f"{args.rate:g} orders/s needs {tasks:.0f} worker tasks (max workers is {shop.max_workers})")
    return 0


def cmd_plan(args) -> int:
    if not args.markdown:
        say("This stack's database connections (deploy/settings.py):")
        for line in plan.connection_arithmetic(shop_from(args)):
            say(f"  {line}")
        say("")
    say(
        plan.table(
            args.rate, latency=args.latency, provider_limit=args.provider_limit, markdown=args.markdown
        )
    )
    return 0


def cmd_cost(args) -> int:
    shop, prices = shop_from(args), cost.load_prices()
    say(cost.table(args.orders, shop, prices, latency=args.latency, provider_limit=args.provider_limit))
    if args.chart:
        path = cost.chart(
            Path(args.chart), shop, prices, latency=args.latency, provider_limit=args.provider_limit
        )
        say(f"chart: {path}")
    return 0


# --- arguments -----------------------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m deploy", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    steps = root.add_subparsers(dest="step", required=True, metavar="STEP")

    def step(name: str, func, help_: str) -> argparse.ArgumentParser:
        sub = steps.add_parser(name, help=help_, description=help_)
        sub.set_defaults(func=func)
        sub.add_argument(
            "--name",
            default=os.environ.get("DEPLOY_STACK", "flashsale"),
            help="stack name, also the prefix of services, queues, alarms (DEPLOY_STACK)",
        )
        return sub

    def sizing(sub: argparse.ArgumentParser) -> None:
        g = sub.add_argument_group("sizing (synthesized into the stack)")
        g.add_argument("--concurrency", type=int, default=20, help="threads per worker task (20)")
        g.add_argument("--min-workers", type=int, default=1, help="fewest worker tasks (1)")
        g.add_argument("--max-workers", type=int, default=20, help="most worker tasks (20)")
        g.add_argument(
            "--worker-size", default="512:1024", help="Fargate CPU:MiB of a worker task (512:1024)"
        )
        g.add_argument(
            "--acceptable-wait",
            type=int,
            default=60,
            help="seconds a payment job may wait in SQS; sets the backlog-per-task target (60)",
        )
        g.add_argument(
            "--latency",
            type=float,
            default=DEFAULT_PAYMENT_LATENCY,
            help="provider seconds per charge, for the ideal rate when no report (3)",
        )
        g.add_argument(
            "--report", help="lab report dir or results.json, or 'latest': the measured per-worker rate"
        )
        g.add_argument("--lambda-memory", type=int, default=512, help="Lambda consumer memory, MB (512)")

    sub = step("synth", cmd_synth, "Print (or --out FILE) the CloudFormation template; no AWS calls.")
    sizing(sub)
    sub.add_argument("--out")

    sub = step(
        "build", cmd_build, "Create the ECR repository if missing, docker build deploy/Dockerfile, push."
    )
    sub.add_argument("--tag", required=True, help="image tag, e.g. $(git rev-parse --short HEAD)")
    sub.add_argument("--repository", default="flashsale", help="ECR repository name (flashsale)")
    sub.add_argument("--platform", default="linux/amd64", help="docker build platform (linux/amd64)")
    sub.add_argument("--dry-run", action="store_true", help="print the commands, run none")

    sub = step(
        "deploy",
        cmd_deploy,
        "Create or update the stack with live events. An update first moves the migrate task to "
        "the new image, runs migrations, then rolls the services. --dry-run prints the change set.",
    )
    sizing(sub)
    sub.add_argument("--tag", required=True, help="image tag pushed by `build`")
    sub.add_argument("--repository", help="ECR repository name (a new stack: flashsale)", default=None)
    sub.add_argument("--certificate-arn", help="ACM certificate for the HTTPS listener (new stack: required)")
    sub.add_argument("--domain", help="the shop's host name (new stack: required)")
    sub.add_argument(
        "--admin-path",
        help="the admin's URL path, not guessable, e.g. staff-7f3a9c/ (new stack: required; "
        "8-64 letters, digits or dashes, then a slash)",
    )
    sub.add_argument("--provider-url", help="payment provider base URL (new stack: required)")
    sub.add_argument(
        "--provider-key-arn", help="Secrets Manager ARN of the provider API key (new stack: required)"
    )
    sub.add_argument(
        "--consumer", choices=["ecs", "lambda"], help="who charges payment jobs (new stack: ecs)"
    )
    sub.add_argument(
        "--dry-run", action="store_true", help="create and print the change set(s), apply nothing"
    )

    step("migrate", cmd_migrate, "Run `manage.py migrate` as a one-off task on the migrate task definition.")
    sub = step(
        "manage",
        cmd_manage,
        "Run any manage.py command as a one-off task on the ops task definition: manage -- dlq --show 10",
    )
    sub.add_argument("--no-wait", action="store_true")
    sub.add_argument("command", nargs=argparse.REMAINDER)
    step(
        "status", cmd_status, "Stack status, services desired/running, worker scaling, queue and DLQ, alarms."
    )
    sub = step("scale", cmd_scale, "Set the worker autoscaling bounds now (e.g. ahead of a sale).")
    sub.add_argument("--min", type=int, required=True)
    sub.add_argument("--max", type=int, required=True)
    sub = step("teardown", cmd_teardown, "Delete the stack, streaming its events (the ECR repository stays).")
    sub.add_argument("--yes", action="store_true", help="really delete")
    sub.add_argument("--poll", type=float, default=5.0, help=argparse.SUPPRESS)
    sub = step(
        "recommend",
        cmd_recommend,
        "With --rate, manage.py recommend_workers' recommendation; then the per-worker rate (lab report "
        "or ideal), task rate, backlog target and worker tasks.",
    )
    sizing(sub)
    sub.add_argument("--rate", type=float, help="orders/s to keep up with")
    sub.add_argument(
        "--provider-limit", type=int, default=0, help="charges the provider runs at once (0 = none)"
    )
    sub = step(
        "plan",
        cmd_plan,
        "What a sale of R orders/s needs, part by part (web, SQS, workers or Lambda, provider, "
        "PostgreSQL, RDS Proxy), and this stack's connection arithmetic. On paper: no AWS calls.",
    )
    sizing(sub)
    sub.add_argument("--rate", type=float, nargs="+", default=[60, 1000, 10000], help="orders/s")
    sub.add_argument(
        "--provider-limit", type=int, default=0, help="charges the provider runs at once (0 = none)"
    )
    sub.add_argument("--markdown", action="store_true", help="one markdown table (docs/capacity-plan.md)")
    sub = step("cost", cmd_cost, "Monthly cost of ECS workers vs the Lambda consumer, break-even, chart.")
    sizing(sub)
    sub.add_argument("--orders", type=float, nargs="+", default=[1e4, 1e6, 1e7], help="orders/month")
    sub.add_argument(
        "--provider-limit", type=int, default=0, help="charges the provider runs at once (0 = none)"
    )
    sub.add_argument("--chart", help="write a PNG of cost vs orders/month here")
    return root


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    return args.func(args)
