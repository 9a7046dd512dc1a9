"""The database pool's sizes from the environment: DB_POOL_MIN_SIZE opened at start, up to
DB_POOL_MAX_SIZE on demand, and the connection budget checked against the max."""

import json

import pytest

from orders.checks import connection_budget_problem
from orders.tests.test_checks import manage

POSTGRES = "postgres://shop@db.internal:5432/shop"  # settings only: nothing connects
SHOW_POOL = (
    "import json; from django.conf import settings as s; print(json.dumps(s.DATABASES['default']['OPTIONS']))"
)


def pool_settings(**env: str) -> dict:
    result = manage("shell", "--no-imports", "-c", SHOW_POOL, DATABASE_URL=POSTGRES, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])["pool"]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("env", "sizes"),
    [
        ({}, (4, 10)),  # a few at start, the max on demand
        ({"DB_POOL_MAX_SIZE": "32"}, (4, 32)),  # one connection per web thread, not all at start
        ({"DB_POOL_MAX_SIZE": "2"}, (2, 2)),  # never more at start than the max
        ({"DB_POOL_MAX_SIZE": "32", "DB_POOL_MIN_SIZE": "32"}, (32, 32)),  # all at start, if asked
        ({"DB_POOL_MIN_SIZE": "0"}, (0, 10)),
    ],
)
def test_the_pool_opens_its_min_at_start_and_grows_to_its_max(env, sizes):
    pool = pool_settings(**env)

    assert (pool["min_size"], pool["max_size"]) == sizes
    assert pool["timeout"] == 10


@pytest.mark.integration
def test_a_min_above_the_max_refuses_to_start():
    result = manage("shell", "--no-imports", "-c", SHOW_POOL, DATABASE_URL=POSTGRES, DB_POOL_MIN_SIZE="11")

    assert result.returncode != 0
    assert "DB_POOL_MIN_SIZE (11) must be from 0 to DB_POOL_MAX_SIZE (10)" in result.stderr


def test_the_connection_budget_counts_the_max_not_the_connections_open_at_start():
    database = {
        "ENGINE": "django.db.backends.postgresql",
        "OPTIONS": {"pool": {"min_size": 4, "max_size": 32}},
    }

    message, _ = connection_budget_problem(database, budget=20, threads=32)

    assert "the pool's max_size 32" in message
