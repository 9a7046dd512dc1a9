"""`GET /readyz`: can this web process serve orders now? The database answers, every migration is
applied, and the payment queue answers SQS's GetQueueAttributes.

200 with one line per check when all pass; 503 naming what failed. The checks run in parallel on a
small thread pool with one deadline (`TIMEOUT_SECONDS`), so a database that black-holes packets or
a connection pool that waits for a free slot makes the probe answer "timed out", never hang; a
probe that finds the pool's threads still busy with an earlier hung check times out too (bounded
threads, no pile-up). The migration check reads the migration files and the `django_migrations`
table: once it passed it is not run again in this process (migrations are not un-applied under a
running process). Error details go to the log, not the body: the probe is unauthenticated.

Where to use it (README "Health"): `make run` and the local stacks wait for it before they use
the web; the ALB keeps probing `/healthz` (config/health.py) on purpose.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, connections
from django.db.migrations.loader import MigrationLoader
from django.http import HttpResponse, JsonResponse

from queues.sqs import sqs_client

log = logging.getLogger(__name__)

PATH = "/readyz"
TIMEOUT_SECONDS = 2.0

_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="readyz")
_migrations_applied = threading.Event()


class NotReady(Exception):
    """A check failed; the message is short and safe to show (no host names, no URLs)."""


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def database() -> dict[str, str]:
    """The database answers a query; every migration on disk is applied (cached once true)."""
    try:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except Exception as exc:
            log.warning("readiness: database unreachable: %r", exc)
            raise NotReady("unreachable") from exc
        if _migrations_applied.is_set():
            return {"database": "ok", "migrations": "ok"}
        # Every migration on disk, not just the leaves: a plan towards an applied leaf skips an
        # unapplied migration before it.
        loader = MigrationLoader(connection)
        unapplied = sorted(node for node in loader.graph.nodes if node not in loader.applied_migrations)
        if unapplied:
            log.warning("readiness: %d unapplied migration(s): %s", len(unapplied), unapplied[:5])
            missing = f"{len(unapplied)} unapplied, first {'.'.join(unapplied[0])}"
            return {"database": "ok", "migrations": missing}
        _migrations_applied.set()
        return {"database": "ok", "migrations": "ok"}
    finally:
        connections.close_all()  # a pool thread keeps no connection (pooled: back to the pool)


def sqs() -> dict[str, str]:
    try:
        sqs_client(timeout=TIMEOUT_SECONDS).get_queue_attributes(
            QueueUrl=settings.SQS_QUEUE_URL, AttributeNames=["ApproximateNumberOfMessages"]
        )
    except Exception as exc:
        log.warning("readiness: SQS payment queue unreachable: %r", exc)
        raise NotReady("unreachable") from exc
    return {"sqs": "ok"}


CHECKS: dict[str, tuple[Callable[[], dict[str, str]], tuple[str, ...]]] = {
    # task: the names it reports
    "database": (lambda: database(), ("database", "migrations")),
    "sqs": (lambda: sqs(), ("sqs",)),
}


def run_checks(timeout: float = TIMEOUT_SECONDS) -> dict[str, str]:
    """Every check's result by name: "ok" or why not. Returns within about `timeout` seconds."""
    futures = {name: _pool.submit(task) for name, (task, _) in CHECKS.items()}
    results: dict[str, str] = {}
    for name, future in futures.items():
        reported = CHECKS[name][1]
        try:
            results.update(future.result(timeout=timeout))
        except FutureTimeout:
            results.update(dict.fromkeys(reported, f"timed out after {timeout:g}s"))
        except NotReady as exc:
            results.update(dict.fromkeys(reported, str(exc)))
            if name == "database":
                results["migrations"] = "not checked"
        except Exception as exc:  # a bug in a check must read as "not ready", never as a 500
            log.exception("readiness check %s crashed", name)
            results.update(dict.fromkeys(reported, f"check failed ({type(exc).__name__})"))
    return results


def readyz() -> HttpResponse:
    results = run_checks()
    failed = [name for name, result in results.items() if result != "ok"]
    body: dict[str, object] = {"status": "unavailable" if failed else "ready", "checks": results}
    if failed:
        body["failed"] = failed
    response = JsonResponse(body, status=503 if failed else 200)
    response["Cache-Control"] = "no-store"
    return response
