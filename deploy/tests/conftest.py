"""A moto server of the deploy tests' own (CloudFormation, SQS, ECS, autoscaling, CloudWatch), and the synth.

Not the session's SQS emulator: these tests create clusters and services, and start from a server
no other test restarts or fills.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

# Before any test module imports aws_cdk (test_stack.py does, for its assertions): jsii starts Node.js
# on that import, and must start the wheel's (deploy/node.py), not whatever `node` is on PATH.
from deploy.node import JSII_NODE  # noqa: F401
from devstack.stack import BASE_DIR, free_port, wait_for_http

REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log_path = Path(tmp_path_factory.mktemp("moto")) / "moto.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log, stderr=subprocess.STDOUT, cwd=BASE_DIR,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/moto-api/", proc=proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def aws(moto_endpoint: str):
    """Return a factory of boto3 clients talking to the deploy tests' moto server."""
    return lambda service: boto3.client(service, region_name=REGION, endpoint_url=moto_endpoint)


@pytest.fixture(scope="session")
def network(moto_endpoint: str) -> dict[str, str]:
    """Create a VPC with two subnets and a security group in moto (ECS checks that they exist)."""
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=moto_endpoint)
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    # As a VPC with interface endpoints (SQS, ECR) must have; moto's RunTask also needs it.
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"{REGION}{zone}")[
            "Subnet"
        ]["SubnetId"]
        for i, zone in enumerate("ab", start=1)
    ]
    group = ec2.create_security_group(GroupName="flashsale-tasks", Description="shop tasks", VpcId=vpc)[
        "GroupId"
    ]
    return {"ECS_SUBNETS": ",".join(subnets), "ECS_SECURITY_GROUPS": group}


@pytest.fixture
def app_name() -> str:
    """Return a fresh name prefix, so each test has its own families, services and queues."""
    return f"shop{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def synthesized() -> dict:
    """The production stack's CloudFormation template with default sizing, synthesized once."""
    from deploy.stack import synth

    return synth(region=REGION)


@pytest.fixture
def deploy_env(moto_endpoint: str, monkeypatch) -> str:
    """Point `python -m deploy` (run in-process) at the moto server, as a deploy shell would."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return moto_endpoint
