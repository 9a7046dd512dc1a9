"""Test session set-up: real SQS-protocol server (moto) and the payment sandbox, on free ports.

They start before Django's settings load, so the settings see their URLs like any process would.
"""

from __future__ import annotations

import os

# Before anything imports the `config` package (its Celery app defaults to local settings).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

from pathlib import Path

import django
import pytest

from config.devstack import Stack

_stack: Stack | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _stack
    if config.getoption("help") or config.getoption("collectonly"):
        return
    log_dir = Path(__file__).parent / ".run" / f"pytest-{os.getpid()}"
    _stack = Stack.create(log_dir)
    _stack.start_sqs()
    _stack.start_sandbox(PAYMENT_LATENCY_SECONDS="0.2", PAYMENT_PROVIDER_CONCURRENCY="1")
    for name in ("SQS_ENDPOINT_URL", "PAYMENT_PROVIDER_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ[name] = _stack.env[name]
    # Settings can load now; the shared fixtures import models, so they come after set-up.
    django.setup()
    config.pluginmanager.import_plugin("tests.fixtures")


def pytest_unconfigure(config: pytest.Config) -> None:
    if _stack is not None:
        _stack.stop()


@pytest.fixture(scope="session")
def stack() -> Stack:
    assert _stack is not None, "the test stack did not start"
    return _stack


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a test that did not run: fail the run instead of hiding it."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if os.environ.get("CI") and skipped and exitstatus == 0:
        reporter.write_line(f"CI: {skipped} test(s) skipped; every test must run in CI.", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
