"""PostgreSQL only: without a server, `make run` and `make test` stop with one line saying how to name one."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import psycopg
import pytest
from django.db import connection

from devstack.database import Unreachable, check_server, ensure_database
from devstack.stack import BASE_DIR

NOBODY = {
    "ENGINE": "django.db.backends.postgresql",
    "HOST": "127.0.0.1",
    "PORT": "1",
    "NAME": "x",
    "USER": "u",
}


def test_a_server_that_does_not_answer_is_one_line_naming_database_url():
    with pytest.raises(Unreachable) as refused:
        check_server(NOBODY)

    line = str(refused.value)
    assert "\n" not in line
    assert line.startswith("PostgreSQL is required and none answers at 127.0.0.1:1")
    assert "DATABASE_URL=postgres://" in line


def test_a_database_url_that_is_not_postgresql_is_refused_in_one_line():
    with pytest.raises(Unreachable, match=r"^DATABASE_URL must name a PostgreSQL database, not .*sqlite3"):
        check_server({"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"})


def _connect(settings: dict, dbname: str) -> psycopg.Connection:
    return psycopg.connect(
        host=settings["HOST"] or "localhost", port=settings["PORT"] or 5432, user=settings["USER"],
        password=settings["PASSWORD"] or None, dbname=dbname, autocommit=True,
    )  # fmt: skip


def test_make_runs_step_creates_the_database_once_and_then_leaves_it():
    settings = {**connection.settings_dict, "NAME": f"flashsale_created_{uuid.uuid4().hex[:8]}"}
    try:
        assert ensure_database(settings) is True
        assert ensure_database(settings) is False
        with _connect(settings, settings["NAME"]) as created:
            assert created.execute("SELECT current_database()").fetchone() == (settings["NAME"],)
    finally:
        with _connect(settings, "postgres") as server:
            server.execute(f'DROP DATABASE IF EXISTS "{settings["NAME"]}" WITH (FORCE)')


@pytest.mark.integration  # a subprocess: `make run`'s first step
def test_make_runs_step_exits_with_one_line_when_no_server_answers():
    env = {**os.environ, "DATABASE_URL": "postgres://postgres@127.0.0.1:1/flashsale"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, "-m", "devstack.database"], env=env, cwd=BASE_DIR, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "PostgreSQL is required" in result.stderr and "DATABASE_URL=" in result.stderr
