"""The bench that `make experiment`, the drain study and `make chaos` share: a database, the stack, Django.

- `fresh_database` makes a fresh database on PostgreSQL (the URL given, DATABASE_URL, else the
  machine's local server) and says which version: a figure means little without its database.
  Without a server it stops with one line saying how to name one (the shop is PostgreSQL only).
- `Bench.start` starts the SQS server and the payment sandbox (and the web when asked) on free
  loopback ports, migrates, seeds the catalogue, creates the queues and sets Django up in this
  process with the same environment, so the caller can read orders with the ORM.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import django
import psycopg
from environ import Env

from devstack.database import HOW
from devstack.stack import Stack, free_port
from sandbox.client import SandboxClient

LOCAL_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"
# The lab drives the shop from one loopback address: the per-client rate limits (CHECKOUT_RATE_LIMIT,
# ORDER_STATUS_RATE_LIMIT; `make run` keeps realistic ones) would measure the limiter, not the shop.
UNLIMITED_RATES = {"CHECKOUT_RATE_LIMIT": "0", "ORDER_STATUS_RATE_LIMIT": "0"}
# The shop as it runs in production, not as `make run` shows it: DEBUG off (with it on, Django wraps
# every query to record its SQL and time) and JSON log lines (the console renderer pads and aligns).
# Measured on the drain study, N = 100 on PostgreSQL: see docs/performance.md.
PRODUCTION_LIKE = {"DJANGO_DEBUG": "0", "LOG_FORMAT": "json"}
# The long poll (SQS_WAIT_TIME_SECONDS) of the workers a bench starts: short, so that a worker the
# bench kills cannot hold a message for long in a poll it left open.
POLL_SECONDS = 1


@dataclass(frozen=True)
class Database:
    url: str
    description: str  # e.g. "PostgreSQL 15.19"


def _admin_connection(url: str) -> psycopg.Connection:
    config = Env.db_url_config(url)
    return psycopg.connect(
        host=config["HOST"] or "127.0.0.1", port=config["PORT"] or 5432, user=config["USER"],
        password=config["PASSWORD"] or None, dbname="postgres", autocommit=True, connect_timeout=3,
    )  # fmt: skip


def fresh_database(name: str, *, url: str | None = None) -> Database:
    """An empty database called `name` on the first PostgreSQL server that answers (`url`,
    DATABASE_URL, the local server); SystemExit with one line when none does."""
    candidates = [u for u in (url, os.environ.get("DATABASE_URL"), LOCAL_POSTGRES) if u]
    for candidate in candidates:
        if not candidate.startswith("postgres"):
            continue
        try:
            with _admin_connection(candidate) as conn:
                version = conn.execute("SHOW server_version").fetchone()[0].split()[0]
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{name}"')
        except psycopg.OperationalError:
            continue
        return Database(candidate.rsplit("/", 1)[0] + f"/{name}", f"PostgreSQL {version}")
    raise SystemExit(f"PostgreSQL is required and none answers at {', '.join(candidates)}; {HOW}")


def drop_database(url: str, name: str) -> None:
    """Drop database `name` on the PostgreSQL server of `url` (a test's own, once it is done)."""
    with _admin_connection(url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def stop_on_sigterm() -> None:
    """Make SIGTERM (`kill`, a CI timeout) unwind this process as an exit does, so the caller's
    `finally: bench.stop()` runs and the stack (SQS server, sandbox, web, workers) does not outlive it.
    Python's default for SIGTERM ends the process at once, leaving every child running."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _exit_on_signal)


def _exit_on_signal(signum: int, frame: object) -> None:
    sys.exit(128 + signum)


@dataclass
class Bench:
    stack: Stack
    database: Database
    sandbox: SandboxClient
    sqs_port: int

    @classmethod
    def start(
        cls,
        run_dir: Path,
        *,
        database: Database,
        env: dict[str, str],
        web: bool = False,
        **sandbox: str,
    ) -> Bench:
        """Start the stack; `sandbox` are the sandbox's environment knobs (PAYMENT_LATENCY_SECONDS=...)."""
        stop_on_sigterm()
        # The web's sync checkout queue admits as many charges as the provider takes (the same variable).
        limit = {k: v for k, v in sandbox.items() if k == "PAYMENT_PROVIDER_CONCURRENCY"}
        env = {
            **limit,
            # Keys of its own in the shared Redis: not `make run`'s, nor another lab's.
            "CACHE_KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX") or f"lab-{os.getpid()}",
            "DATABASE_URL": database.url,
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            **PRODUCTION_LIKE,
            **UNLIMITED_RATES,
            **env,
        }
        stack = Stack.create(run_dir / "logs", extra_env=env)
        sqs_port = free_port()
        try:
            stack.start_sqs(sqs_port)
            stack.start_sandbox(**sandbox)
            os.environ.update(env)
            os.environ.update({k: stack.env[k] for k in ("SQS_ENDPOINT_URL", "PAYMENT_PROVIDER_URL")})
            stack.manage("migrate", "--noinput")
            stack.manage("seed_catalogue")
            stack.manage("create_queues")
            stack.start_relay()  # publishes the accepted orders' jobs: the web only commits them
            if web:
                stack.start_web()
        except BaseException:
            stack.stop()
            raise
        django.setup()
        logging.getLogger().setLevel(logging.WARNING)  # the figures are the output; logs go to logs/
        return cls(stack, database, SandboxClient(stack.env["PAYMENT_PROVIDER_URL"]), sqs_port)

    def restart_sqs(self) -> None:
        """Restart the SQS server on its port: its queues come back empty, as after an outage."""
        self.stack.stop_named("sqs")
        self.stack.start_sqs(self.sqs_port)
        self.stack.manage("create_queues")

    def stop(self) -> None:
        self.stack.stop()
