"""The configuration contract: `manage.py check` refuses a broken timeout chain; production needs secrets."""

import os
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from orders.checks import connection_budget_problem


def errors() -> dict[str, str]:
    return {e.id: e.msg for e in run_checks() if e.id and e.id.startswith("orders.")}


def test_the_default_settings_keep_the_chain():
    assert errors() == {}


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"ORDER_LEASE_SECONDS": 60}, "ORDER_LEASE_SECONDS"),  # payment timeout is 120
        ({"SQS_VISIBILITY_TIMEOUT": 100}, "SQS_VISIBILITY_TIMEOUT"),  # the lease is 150
        ({"SQS_VISIBILITY_TIMEOUT": 50_000, "ORDER_LEASE_SECONDS": 150}, "SQS_VISIBILITY_TIMEOUT"),
        ({"SYNC_PAYMENT_TIMEOUT_SECONDS": 200}, "SYNC_PAYMENT_TIMEOUT_SECONDS"),  # the web's is 120
        ({"IDEMPOTENCY_LOCK_SECONDS": 90}, "IDEMPOTENCY_LOCK_SECONDS"),
    ],
)
def test_a_broken_link_is_an_error_naming_the_setting(settings, override, named):
    for name, value in override.items():
        setattr(settings, name, value)

    assert errors()["orders.E001"].startswith(f"{named}: ")


def test_the_check_command_fails_on_a_broken_chain(settings):
    settings.ORDER_LEASE_SECONDS = 10

    with pytest.raises(SystemCheckError, match="ORDER_LEASE_SECONDS: the order lease"):
        call_command("check")


def test_a_missing_provider_key_is_an_error(settings):
    settings.PAYMENT_PROVIDER_API_KEY = ""

    assert "orders.E002" in errors()


PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "DJANGO_SECRET_KEY": "test-only-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP",
    "DATABASE_URL": "postgres://shop@db.invalid:5432/flashsale",  # `check` connects to no database
    "REDIS_URL": "redis://127.0.0.1:6379/3",
    "DJANGO_ALLOWED_HOSTS": "shop.example.com",
    "PAYMENT_PROVIDER_URL": "https://provider.example.com",
    "PAYMENT_PROVIDER_API_KEY": "sk_live_example",
    "SQS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/flashsale-payments",
    "SQS_DLQ_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/flashsale-payments-dlq",
}


def manage(*args: str, **env: str | None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in PRODUCTION_ENV and not k.startswith("SQS_")}
    merged = {**base, **PRODUCTION_ENV, **env}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        env={k: v for k, v in merged.items() if v is not None},
        cwd=django_settings.BASE_DIR, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.integration
def test_production_settings_start_with_every_variable_given():
    result = manage("check")

    assert result.returncode == 0, result.stderr


@pytest.mark.integration
@pytest.mark.parametrize("missing", [name for name in PRODUCTION_ENV if name != "DJANGO_SETTINGS_MODULE"])
def test_production_settings_refuse_to_start_without(missing):
    result = manage("check", **{missing: None})

    assert result.returncode != 0
    assert f"Set the {missing} environment variable" in result.stderr


@pytest.mark.integration
def test_manage_check_refuses_a_timeout_override_that_breaks_charge_once():
    result = manage("check", ORDER_LEASE_SECONDS="30", PAYMENT_TIMEOUT_SECONDS="120")

    assert result.returncode != 0
    assert "ORDER_LEASE_SECONDS: the order lease (30s) must outlast a worker's payment call" in result.stderr


def postgres(options: dict) -> dict:
    return {"ENGINE": "django.db.backends.postgresql", "NAME": "x", "OPTIONS": options}


def test_a_pool_within_the_budget_passes():
    assert connection_budget_problem(postgres({"pool": {"max_size": 10}}), budget=20, threads=200) is None


def test_a_pool_larger_than_the_budget_is_a_problem():
    message, _ = connection_budget_problem(postgres({"pool": {"max_size": 50}}), budget=20, threads=4)

    assert "the pool's max_size 50" in message


def test_more_threads_than_the_budget_without_a_pool_is_a_problem():
    message, hint = connection_budget_problem(postgres({}), budget=90, threads=200)

    assert message.startswith("DATABASE_CONNECTION_BUDGET: one process may open 200 threads")
    assert "DB_POOL_MAX_SIZE" in hint


@pytest.mark.integration
def test_check_deploy_with_production_settings_reports_no_issue():
    result = manage("check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stderr
    # The one silenced: security.W021, HSTS preload left off on purpose (opt-in, below).
    assert "System check identified no issues (1 silenced)." in result.stdout


@pytest.mark.integration
def test_check_deploy_with_hsts_preload_opted_in_silences_nothing():
    result = manage("check", "--deploy", "--fail-level", "WARNING", DJANGO_SECURE_HSTS_PRELOAD="1")

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


HSTS_HEADER = (
    "from django.test import Client; "
    "response = Client(HTTP_HOST='shop.example.com').get('/api/no-such-page', secure=True); "
    "print('HSTS:', response.headers['Strict-Transport-Security'])"
)


def hsts_header(**env: str) -> str:
    result = manage("shell", "-c", HSTS_HEADER, **env)
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("HSTS: ")]
    return line.removeprefix("HSTS: ")


@pytest.mark.integration
def test_production_sends_hsts_for_a_year_with_subdomains_but_not_preload_by_default():
    # A preload listing is baked into browsers and takes months to undo: asked for, never assumed.
    assert hsts_header() == "max-age=31536000; includeSubDomains"


@pytest.mark.integration
def test_hsts_preload_is_sent_only_when_the_operator_opts_in():
    assert hsts_header(DJANGO_SECURE_HSTS_PRELOAD="1") == "max-age=31536000; includeSubDomains; preload"


def test_the_sync_checkout_queue_must_not_keep_an_admitted_checkout_past_the_sync_timeout(settings):
    settings.SYNC_CHECKOUT_CHARGE_SECONDS = 10  # one charging, two on deck: 30 s, the sync timeout
    settings.SYNC_CHECKOUT_ON_DECK = 2

    assert errors()["orders.W005"].startswith("SYNC_CHECKOUT_ON_DECK: 2 waiting")
    settings.SYNC_CHECKOUT_ON_DECK = 1
    assert "orders.W005" not in errors()
    settings.SYNC_CHECKOUT_ON_DECK = -1
    assert "orders.W005" in errors()
