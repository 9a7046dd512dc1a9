"""`GET /readyz`: can this web process serve orders now? The database answers, every migration is
applied, and the payment queue answers SQS's GetQueueAttributes.

200 with one line per check when all pass; 503 naming what failed. The body says only "ok",
"unreachable", "timed out after 2s", "N unapplied" (how many migrations, not which), "not checked"
or "check failed": the probe is unauthenticated, so details (errors, migration names) go to the log.
In production the ALB refuses /readyz at the edge: it is reachable only inside the VPC.

Cheap and bounded, however often it is asked:
- An answer is reused for READYZ_CACHE_SECONDS (2 s) in this process: a probe every 0.1 s from
  every poller still costs one query and one SQS call per 2 s.
- Single flight: one probe runs the checks; probes that arrive meanwhile answer the last result,
  or, when there is none yet, wait for that run. They never start checks of their own.
- Each check runs at most once at a time. The checks run in parallel on a small thread pool under
  one deadline (`TIMEOUT_SECONDS`), so a database that black-holes packets or a connection pool
  that waits for a free slot makes the probe answer "timed out", never hang. A check still hung
  from an earlier probe answers "timed out" at once and is not submitted again, so the pool's
  queue holds at most one task per check: nothing piles up behind a hung check.
The migration check reads the migration files and the `django_migrations` table: once it passed it
is not run again in this process (migrations are not un-applied under a running process).

Where to use it (docs/operations.md, "Health and readiness"): `make run` and the local stacks wait
for it before they use the web; the ALB keeps probing `/healthz` (observability/health.py) on purpose.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from django.conf import settings
from django.db import connection, connections
from django.db.migrations.loader import MigrationLoader
from django.http import HttpResponse, JsonResponse
from django.utils.module_loading import import_string

log = logging.getLogger(__name__)

PATH = "/readyz"
TIMEOUT_SECONDS = 2.0

_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="readyz")
_migrations_applied = threading.Event()


class NotReady(Exception):
    """A check failed; the message is short and safe to show (no host names, no URLs)."""


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
            names = ", ".join(".".join(node) for node in unapplied)
            log.warning("readiness: %d unapplied migration(s): %s", len(unapplied), names)
            return {"database": "ok", "migrations": f"{len(unapplied)} unapplied"}  # no names: public
        _migrations_applied.set()
        return {"database": "ok", "migrations": "ok"}
    finally:
        connections.close_all()  # a pool thread keeps no connection (pooled: back to the pool)


def sqs() -> dict[str, str]:
    """The payment queue answers: READYZ_SQS_PING (queues.sqs.ping) returns within the deadline.

    Named by the settings, not imported: observability imports nothing of the shop's (it is the
    layer below queues/, whose transport beats the heartbeat), and config wires the two together.
    """
    try:
        import_string(settings.READYZ_SQS_PING)(timeout=TIMEOUT_SECONDS)
    except Exception as exc:
        log.warning("readiness: SQS payment queue unreachable: %r", exc)
        raise NotReady("unreachable") from exc
    return {"sqs": "ok"}


CHECKS: dict[str, tuple[Callable[[], dict[str, str]], tuple[str, ...]]] = {
    # task: the names it reports
    "database": (lambda: database(), ("database", "migrations")),
    "sqs": (lambda: sqs(), ("sqs",)),
}

# Each check's latest run, by name: a run not yet done is not submitted again (see the docstring).
_running: dict[str, Future[dict[str, str]]] = {}
_running_lock = threading.Lock()

# The cached answer (when it was made, by time.monotonic(); the results) and the run under way.
_lock = threading.Lock()
_last: tuple[float, dict[str, str]] | None = None
_refreshing: threading.Event | None = None


def _timed_out(reported: tuple[str, ...], timeout: float) -> dict[str, str]:
    return dict.fromkeys(reported, f"timed out after {timeout:g}s")


def run_checks(timeout: float = TIMEOUT_SECONDS) -> dict[str, str]:
    """Every check's result by name: "ok" or why not. Returns within about `timeout` seconds.

    Not cached (`results()` is): each call runs every check that is not still running.
    """
    deadline = time.monotonic() + timeout
    futures: dict[str, Future[dict[str, str]] | None] = {}
    with _running_lock:
        for name, (task, _) in CHECKS.items():
            previous = _running.get(name)
            if previous is not None and not previous.done():
                futures[name] = None  # still hung from an earlier probe: wait for nothing new
            else:
                futures[name] = _running[name] = _pool.submit(task)
    results: dict[str, str] = {}
    for name, future in futures.items():
        reported = CHECKS[name][1]
        if future is None:
            results.update(_timed_out(reported, timeout))
            continue
        try:
            results.update(future.result(timeout=max(0.0, deadline - time.monotonic())))
        except FutureTimeout:
            results.update(_timed_out(reported, timeout))
        except NotReady as exc:
            results.update(dict.fromkeys(reported, str(exc)))
            if name == "database":
                results["migrations"] = "not checked"
        except Exception:  # a bug in a check must read as "not ready", never as a 500
            log.exception("readiness check %s crashed", name)
            results.update(dict.fromkeys(reported, "check failed"))
    return results


def results() -> dict[str, str]:
    """The checks' results, at most READYZ_CACHE_SECONDS old; one run at a time (the module's docstring)."""
    global _last, _refreshing
    mine = threading.Event()
    with _lock:
        last, running = _last, _refreshing
        if last is not None and time.monotonic() - last[0] < settings.READYZ_CACHE_SECONDS:
            return last[1]
        if running is None:
            _refreshing = mine  # this probe runs the checks
    if running is not None:  # another probe is running them: its last answer, or wait for this one
        if last is not None:
            return last[1]
        running.wait(TIMEOUT_SECONDS + 1)
        with _lock:
            return _last[1] if _last is not None else _all_timed_out(TIMEOUT_SECONDS)
    try:
        fresh = run_checks(TIMEOUT_SECONDS)
        with _lock:
            _last = (time.monotonic(), fresh)
        return fresh
    finally:
        with _lock:
            if _refreshing is mine:
                _refreshing = None
        mine.set()


def _all_timed_out(timeout: float) -> dict[str, str]:
    answer: dict[str, str] = {}
    for _, reported in CHECKS.values():
        answer.update(_timed_out(reported, timeout))
    return answer


def reset() -> None:
    """Forget the cached answer and the runs under way (tests)."""
    global _last, _refreshing
    with _lock:
        _last, _refreshing = None, None
    with _running_lock:
        _running.clear()


def readyz() -> HttpResponse:
    checked = results()
    failed = [name for name, result in checked.items() if result != "ok"]
    body: dict[str, object] = {"status": "unavailable" if failed else "ready", "checks": checked}
    if failed:
        body["failed"] = failed
    response = JsonResponse(body, status=503 if failed else 200)
    response["Cache-Control"] = "no-store"
    return response
