"""Publish payment jobs off the request path.

Accepting an async order is a database commit; publishing its job to SQS took half of the
request's time (about 10 ms of 21 locally) and all of it when SQS is slow or down (seconds of
retries). After commit the job goes to a small per-process thread pool instead, so the customer's
202 never waits for the broker. The order row stays the outbox: a publish that fails, or finds
this backlog full, marks the order and the sweeper publishes it; if the process dies with jobs
still queued here, their orders are re-published after ORDER_REQUEUE_AFTER_SECONDS.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait

from django.conf import settings
from django.db import connections

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_pid: int | None = None
_pending: set[Future] = set()


def _executor() -> ThreadPoolExecutor:
    """One pool per process, made lazily: a pool inherited across gunicorn's fork has no threads."""
    global _pool, _pool_pid
    with _lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="outbox")
            _pool_pid = os.getpid()
            _pending.clear()
        return _pool


def _run(action: Callable[..., object], *args: object) -> None:
    try:
        action(*args)
    finally:
        connections.close_all()  # the pool's threads must not hold database connections


def submit(action: Callable[..., object], *args: object) -> bool:
    """Run `action(*args)` soon, in the background; False if the backlog is full (not queued).

    At interpreter exit queued work still runs. The backlog is bounded (OUTBOX_MAX_PENDING) so
    that a broker slower than the accept rate cannot grow a web process's memory without end.
    """
    executor = _executor()
    with _lock:
        if len(_pending) >= settings.OUTBOX_MAX_PENDING:
            return False
        future = executor.submit(_run, action, *args)
        _pending.add(future)
    future.add_done_callback(_forget)
    return True


def _forget(future: Future) -> None:
    with _lock:
        _pending.discard(future)


def drain(timeout: float = 10) -> bool:
    """Wait until everything submitted so far has run; True if it all finished in time."""
    with _lock:
        pending = set(_pending)
    _, not_done = wait(pending, timeout=timeout)
    return not not_done
