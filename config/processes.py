"""The shop's four long-running processes, each defined once: web, worker, relay and sweeper.

``python -m config.processes web|worker|relay|sweeper`` execs the command with its options read from the
environment (the Procfile, the image and the ECS task definitions run exactly this), and the
local stack supervisor (`devstack`) builds the same argv through the functions below.

    web      gunicorn, gthread: a sync checkout holds a thread for up to SYNC_PAYMENT_TIMEOUT_SECONDS
             WEB_BIND (default 127.0.0.1:$WEB_PORT or :8000), WEB_PROCESSES (2), WEB_THREADS (32),
             WEB_METRICS_PORT (0 = off; config/gunicorn.py)
    worker   celery -A config worker, threads pool: payments are I/O-bound
             WORKER_CONCURRENCY (20), WORKER_HOSTNAME, WORKER_METRICS_PORT (0 = off)
    relay    manage.py relay_orders: publishes the accepted orders' payment jobs (orders/relay.py)
             RELAY_THREADS (1), RELAY_METRICS_PORT (0 = off)
    sweeper  manage.py sweep_orders --every SWEEP_INTERVAL_SECONDS, SWEEPER_METRICS_PORT (0 = off)

The web timeout comes from settings (WEB_TIMEOUT_SECONDS), where it is checked against the rest of
the timeout chain (core/timeouts.py); reading it here also makes a misconfigured process refuse
to start before it serves anything.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from django.conf import settings  # lazy: only the web's command reads it

from observability.access_log import ACCESS_LOG_FORMAT as access_log_format

ROLES = ("web", "worker", "relay", "sweeper")
# A file, not `python:config.gunicorn`: gunicorn then runs it alone, without importing the `config`
# package (whose Celery app imports prometheus_client before the file could set its directory).
GUNICORN_CONFIG = str(Path(__file__).with_name("gunicorn.py"))


def web_argv(
    *, bind: str, timeout: int, processes: int = 2, threads: int = 32, access_log: bool = True
) -> list[str]:
    return [
        "gunicorn", "config.wsgi", "--bind", bind, "--worker-class", "gthread",
        "--workers", str(processes), "--threads", str(threads), "--timeout", str(timeout),
        # Metrics (multiprocess mode, served by the master on WEB_METRICS_PORT): see the file.
        "--config", GUNICORN_CONFIG,
        # Structured lines; no customer data in the access log (observability/access_log.py).
        "--logger-class", "observability.access_log.RedactingLogger",
        *(["--access-logfile", "-", "--access-logformat", access_log_format] if access_log else []),
    ]  # fmt: skip


def worker_argv(*, concurrency: int, pool: str = "threads", hostname: str | None = None) -> list[str]:
    """No heartbeat, gossip or mingle: SQS has no broadcast, and they only cost requests."""
    return [
        "celery", "-A", "config", "worker", f"--concurrency={concurrency}", f"--pool={pool}",
        "--loglevel=INFO", "--without-heartbeat", "--without-gossip", "--without-mingle",
        *([f"--hostname={hostname}"] if hostname else []),
    ]  # fmt: skip


def relay_argv() -> list[str]:
    return ["python", "manage.py", "relay_orders"]


def sweeper_argv(*, every: float | None = None) -> list[str]:
    return ["python", "manage.py", "sweep_orders", "--every", *([f"{every:g}"] if every is not None else [])]


def argv_from_environment(role: str, environ: Mapping[str, str] = os.environ) -> list[str]:
    """The command for `role`, configured by the environment as the module docstring says."""
    if role == "web":
        bind = environ.get("WEB_BIND") or f"127.0.0.1:{environ.get('WEB_PORT', '8000')}"
        return web_argv(
            bind=bind,
            timeout=settings.WEB_TIMEOUT_SECONDS,
            processes=int(environ.get("WEB_PROCESSES", 2)),
            threads=int(environ.get("WEB_THREADS", settings.WEB_THREADS)),
        )
    if role == "worker":
        return worker_argv(
            concurrency=int(environ.get("WORKER_CONCURRENCY", 20)), hostname=environ.get("WORKER_HOSTNAME")
        )
    if role == "relay":
        return relay_argv()
    if role == "sweeper":
        return sweeper_argv()
    raise SystemExit(f"unknown role {role!r}; one of {', '.join(ROLES)}")


def main(argv: list[str]) -> None:
    if len(argv) != 1 or argv[0] not in ROLES:
        raise SystemExit(f"usage: python -m config.processes {{{','.join(ROLES)}}}")
    command = argv_from_environment(argv[0])
    # The venv's own executables, whichever PATH the caller has.
    executable = os.path.join(os.path.dirname(sys.executable), command[0])
    if command[0] == "python":
        executable = sys.executable
    os.execv(executable, [executable, *command[1:]])


if __name__ == "__main__":
    main(sys.argv[1:])
