"""Readiness (`/readyz`): the database, the migrations and SQS, each named when it fails; cached,
one run at a time, and bounded however often it is probed."""

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.error import HTTPError
from urllib.parse import urlsplit, urlunsplit
from urllib.request import urlopen

import pytest
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder

from devstack.stack import Stack, free_port
from observability import readiness
from tests.fixtures import database_url

READY = {"status": "ready", "checks": {"database": "ok", "migrations": "ok", "sqs": "ok"}}


def body(response) -> dict:
    return json.loads(response.content)


@pytest.fixture(autouse=True)
def fresh_probe():
    """Each test starts with no cached answer and no run under way (the cache lives per process)."""
    readiness.reset()
    yield
    readiness.reset()


@pytest.fixture
def sqs_up(monkeypatch):
    """SQS answers (the unit tier runs no SQS server: its check's answer is stood in for)."""
    monkeypatch.setattr(readiness, "sqs", lambda: {"sqs": "ok"})


def test_readyz_is_503_naming_sqs_when_nothing_answers_at_the_queue(client, transactional_db, settings):
    settings.SQS_QUEUE_URL = f"http://127.0.0.1:{free_port()}/123456789012/flashsale-payments"
    settings.SQS_ENDPOINT_URL = settings.SQS_QUEUE_URL.rsplit("/", 2)[0]

    response = client.get("/readyz", HTTP_HOST="10.0.3.17:8000")  # any Host, like /healthz

    assert response.status_code == 503
    assert body(response) == {
        "status": "unavailable",
        "checks": {"database": "ok", "migrations": "ok", "sqs": "unreachable"},
        "failed": ["sqs"],
    }
    assert response["Cache-Control"] == "no-store"


def test_readyz_counts_a_migration_the_database_lacks_and_names_it_only_in_the_log(
    client, transactional_db, sqs_up, monkeypatch, settings, caplog
):
    settings.READYZ_CACHE_SECONDS = 0  # every probe checks again
    monkeypatch.setattr(readiness, "_migrations_applied", threading.Event())  # not cached as passed
    recorder = MigrationRecorder(connection)
    recorder.record_unapplied("orders", "0003_stock")
    try:
        response = client.get("/readyz")
    finally:
        recorder.record_applied("orders", "0003_stock")

    assert response.status_code == 503
    assert body(response)["failed"] == ["migrations"]
    assert body(response)["checks"]["migrations"] == "1 unapplied"
    assert b"0003" not in response.content and b"stock" not in response.content  # the probe is public
    assert "orders.0003_stock" in caplog.text  # the operator reads the name in the log
    assert client.get("/readyz").status_code == 200  # and ready again once it is applied


def test_readyz_answers_within_its_deadline_when_a_check_hangs(monkeypatch):
    hang = threading.Event()
    monkeypatch.setattr(readiness, "CHECKS", {"database": (lambda: hang.wait(5) or {}, ("database",))})
    started = time.monotonic()
    try:
        results = readiness.run_checks(timeout=0.3)
    finally:
        hang.set()

    assert time.monotonic() - started < 1.5
    assert results == {"database": "timed out after 0.3s"}


def test_readyz_passes_on_a_healthy_process(client, transactional_db, sqs_up):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert body(response) == READY


# --- cheap and bounded: a cache, one run at a time, no queue behind a hung check --------------------


@pytest.fixture
def counted(monkeypatch):
    """The real database check and a stand-in SQS check, counting their runs and the SQL they send."""
    calls = {"database": 0, "sqs": 0, "queries": 0}
    real_database = readiness.database

    def count_query(execute, sql, params, many, context):
        calls["queries"] += 1
        return execute(sql, params, many, context)

    def database():
        calls["database"] += 1
        with connection.execute_wrapper(count_query):  # the check's own thread and connection
            return real_database()

    def sqs():
        calls["sqs"] += 1
        return {"sqs": "ok"}

    monkeypatch.setattr(readiness, "database", database)
    monkeypatch.setattr(readiness, "sqs", sqs)
    applied = threading.Event()
    applied.set()  # the migration check passed earlier in this process: the query is SELECT 1
    monkeypatch.setattr(readiness, "_migrations_applied", applied)
    return calls


def test_two_probes_within_the_cache_time_cost_one_query_and_one_sqs_call(client, transactional_db, counted):
    assert [client.get("/readyz").status_code for _ in range(2)] == [200, 200]

    assert counted == {"database": 1, "sqs": 1, "queries": 1}


def test_a_probe_after_the_cache_time_checks_again(client, transactional_db, counted, settings):
    settings.READYZ_CACHE_SECONDS = 0.2
    client.get("/readyz")
    time.sleep(0.3)

    assert body(client.get("/readyz")) == READY
    assert counted == {"database": 2, "sqs": 2, "queries": 2}


def test_concurrent_probes_while_a_check_hangs_run_it_once_and_answer_timed_out(monkeypatch, settings):
    settings.READYZ_CACHE_SECONDS = 0  # the worst case: every probe wants a fresh answer
    monkeypatch.setattr(readiness, "TIMEOUT_SECONDS", 0.3)
    hang, runs, submits = threading.Event(), [], []
    monkeypatch.setattr(
        readiness, "CHECKS", {"database": (lambda: runs.append(1) or hang.wait(10) or {}, ("database",))}
    )
    real_submit = readiness._pool.submit
    monkeypatch.setattr(readiness._pool, "submit", lambda task: submits.append(task) or real_submit(task))

    def twenty_at_once() -> list[tuple[int, dict]]:
        start = threading.Barrier(20)

        def probe_once(_):
            start.wait()
            response = readiness.readyz()
            return response.status_code, body(response)

        with ThreadPoolExecutor(max_workers=20) as probes:
            return list(probes.map(probe_once, range(20)))

    try:
        began = time.monotonic()
        first = twenty_at_once()
        second = twenty_at_once()  # the check is still hung: past its deadline, nothing new is queued
        elapsed = time.monotonic() - began
    finally:
        hang.set()

    timed_out = (
        503,
        {"status": "unavailable", "checks": {"database": "timed out after 0.3s"}, "failed": ["database"]},
    )
    assert first + second == [timed_out] * 40
    assert len(submits) == len(runs) == 1
    assert elapsed < 2.5  # each wave within about one deadline, none waiting behind the hung check


# --- a real web process: its database and its SQS server go down and come back ---------------------


def probe(url: str) -> tuple[int, dict]:
    try:
        with urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except HTTPError as error:
        return error.code, json.loads(error.read())


def probe_until(url: str, status: int, timeout: float = 40) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        code, answer = probe(url)
        if code == status:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} still {code} {answer} after {timeout}s, not {status}")
        time.sleep(0.5)


TERMINATE = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s"


@pytest.fixture
def database_role(transactional_db):
    """A login role on the test database, which the test can lock out (NOLOGIN + terminate) and let in."""
    role = f"flashsale_ready_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role} LOGIN")
        cursor.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    yield role
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER ROLE {role} NOLOGIN")
        cursor.execute(TERMINATE, [role])
        cursor.execute(f"DROP OWNED BY {role}")
        cursor.execute(f"DROP ROLE {role}")


@pytest.mark.integration
def test_a_running_web_is_unready_while_its_database_or_sqs_is_down_and_ready_after(database_role, tmp_path):
    parts = urlsplit(database_url())
    role_url = urlunsplit(parts._replace(netloc=f"{database_role}@{parts.hostname}:{parts.port or 5432}"))
    own = Stack.create(tmp_path / "logs")  # its own SQS server, so stopping it disturbs no other test
    try:
        sqs = own.start_sqs()
        sqs_port = int(own.env["SQS_PORT"])
        own.start_web(name="web-ready", workers=1, threads=4, DATABASE_URL=role_url, DB_POOL_MAX_SIZE="2")
        url = own.env["WEB_URL"] + "/readyz"
        assert probe(url) == (200, READY)

        with connection.cursor() as cursor:  # the database goes away for this web
            cursor.execute(f"ALTER ROLE {database_role} NOLOGIN")
            cursor.execute(TERMINATE, [database_role])
        down = probe_until(url, 503)
        assert down["failed"] == ["database", "migrations"]
        assert down["checks"]["sqs"] == "ok"
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER ROLE {database_role} LOGIN")
        probe_until(url, 200)

        own.stop_named("sqs")  # SQS goes away
        assert not sqs.alive()
        down = probe_until(url, 503)
        assert down["failed"] == ["sqs"]
        assert down["checks"]["database"] == "ok"
        own.start_sqs(sqs_port)
        probe_until(url, 200)
    finally:
        own.stop()
