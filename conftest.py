"""Test session set-up: settings first, then the real services, started only when a test needs them.

Tiers (markers set here, `make test-fast` runs the first alone):
- unit: no subprocess. Django, the database, the test client; publishing goes to a recorder.
- integration: needs the SQS-protocol server and the payment sandbox (the `stack` fixture), which
  start lazily, once, on the first such test.
- browser, chaos, lab: marked in their modules; they need the stack too.

The services' ports are chosen before Django's settings load, so the settings see their URLs as any
process would; the processes themselves start only when the `stack` fixture is first used.
"""

from __future__ import annotations

import os

# Before anything imports the `config` package (its Celery app defaults to local settings).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

from collections.abc import Iterator
from pathlib import Path

import django
import pytest
import redis
from django.conf import settings

from devstack.database import Unreachable, check_server
from devstack.stack import Stack, free_port

SERVICE_MARKERS = ("integration", "browser", "chaos", "lab")
# Fixtures that start a process: the shared stack, the deploy tests' own moto server, and the CDK
# synth (a Node.js process, ~15 s once per session).
SERVICE_FIXTURES = {"stack", "moto_endpoint", "synthesized"}
_ports: dict[str, int] = {}


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("help"):
        return
    _ports.update(sqs=free_port(), sandbox=free_port())
    os.environ["SQS_ENDPOINT_URL"] = f"http://127.0.0.1:{_ports['sqs']}"
    os.environ["PAYMENT_PROVIDER_URL"] = f"http://127.0.0.1:{_ports['sandbox']}"
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    # This run's keys in the shared Redis (rate-limit counters), its stacks' included: deleted at the end.
    os.environ["CACHE_KEY_PREFIX"] = f"test-{os.getpid()}"
    # Settings can load now; the shared fixtures import models, so they come after set-up.
    django.setup()
    try:  # PostgreSQL only: without a server, one line says how to name one, not a traceback per test
        check_server(settings.DATABASES["default"])
    except Unreachable as exc:
        raise pytest.UsageError(str(exc)) from None
    config.pluginmanager.import_plugin("tests.fixtures")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test by tier: what starts a process is integration (or finer), the rest unit."""
    for item in items:
        if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            if not any(item.get_closest_marker(name) for name in SERVICE_MARKERS):
                item.add_marker(pytest.mark.integration)
        elif not any(item.get_closest_marker(name) for name in SERVICE_MARKERS):
            item.add_marker(pytest.mark.unit)


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    """The SQS-protocol server and the payment sandbox, started on first use and stopped at the end."""
    if request.config.option.markexpr == "unit":
        pytest.fail("a unit-tier test asked for the live services; mark it or drop the dependency")
    log_dir = Path(__file__).parent / ".run" / f"pytest-{os.getpid()}"
    started = Stack.create(log_dir)
    try:
        started.start_sqs(_ports["sqs"])
        started.start_sandbox(
            _ports["sandbox"], PAYMENT_LATENCY_SECONDS="0.2", PAYMENT_PROVIDER_CONCURRENCY="1"
        )
        yield started
    finally:
        started.stop()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Delete this run's cache keys; in CI, fail a run that skipped a test (a test that did not run)."""
    _delete_cache_keys()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if os.environ.get("CI") and skipped and exitstatus == 0:
        reporter.write_line(f"CI: {skipped} test(s) skipped; every test must run in CI.", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _delete_cache_keys() -> None:
    prefix = os.environ.get("CACHE_KEY_PREFIX")
    if not prefix or not prefix.startswith("test-"):
        return
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        for key in client.scan_iter(match=f"{prefix}:*", count=500):
            client.delete(key)
    except redis.RedisError:
        pass  # nothing was counted there


@pytest.fixture(autouse=True)
def _sold_out_forgotten() -> Iterator[None]:
    """Each test starts with no product remembered as sold out (shop/soldout.py is per process,
    and test databases reuse skus under new ids)."""
    from shop import soldout

    soldout.forget(skus=list(soldout._remembered))
    yield
