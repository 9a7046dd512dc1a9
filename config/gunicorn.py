"""gunicorn's configuration file (`--config <path of this file>`): the web's Prometheus metrics and
its warm-up. A web process holds no payment jobs: the relay publishes them (orders/relay.py).

The web runs several gunicorn processes; each counts in its own files under
PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode), and the master serves them merged
on WEB_METRICS_PORT (0 = off) at METRICS_ADDR, not on the public port: the ALB forwards only the
web port, so /metrics is never reachable from the internet (docs/operations.md, "Observability").

The directory is new for every start (stale files of an earlier run would add their counts) and
must be in the environment before any process imports prometheus_client, which picks its value
class at import: hence the assignment at the top, before the imports below it. gunicorn runs this
file by its path, alone (not as part of the `config` package, whose imports would come first).
"""

from __future__ import annotations

import gc
import logging
import os
import shutil
import tempfile

os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="flashsale-web-metrics-")

from prometheus_client import multiprocess

from observability import metrics


def when_ready(server) -> None:
    """The master serves the workers' merged metrics (its thread is not inherited by the forks)."""
    port = int(os.environ.get("WEB_METRICS_PORT") or 0)
    metrics.serve(port, os.environ.get("METRICS_ADDR", "127.0.0.1"), registry=metrics.multiprocess_registry())


def post_worker_init(worker) -> None:
    """Warm the worker up (config/startup.py), then take what it loaded out of the garbage
    collector's sight (`gc.freeze`).

    A full collection walks every tracked object, and a loaded web process holds a great many
    (Django, DRF, the views), so every request of the process waited on it, often enough to set
    the p99 that the GET and the checkout share. Frozen, the startup objects are never walked again
    and a full collection is about a tenth as long (docs/performance.md, "Figures behind the code's
    comments"). The warm-up comes first so
    that what it loads (the views, the publisher) is frozen too, before the first request.
    """
    from config.startup import warm_up_web

    warm_up_web()
    gc.freeze()
    logging.getLogger("config.gunicorn").info(
        "startup objects frozen", extra={"frozen_objects": gc.get_freeze_count(), "pid": os.getpid()}
    )


def child_exit(server, worker) -> None:
    """A dead worker's live gauges stop counting; its counters stay summed."""
    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
