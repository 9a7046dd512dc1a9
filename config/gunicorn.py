"""gunicorn's configuration file (`--config <path of this file>`): the web's Prometheus metrics.

The web runs several gunicorn processes; each counts in its own files under
PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode), and the master serves them merged
on WEB_METRICS_PORT (0 = off) at METRICS_ADDR, not on the public port: the ALB forwards only the
web port, so /metrics is never reachable from the internet (README "Observability").

The directory is new for every start (stale files of an earlier run would add their counts) and
must be in the environment before any process imports prometheus_client, which picks its value
class at import: hence the assignment at the top, before the imports below it. gunicorn runs this
file by its path, alone (not as part of the `config` package, whose imports would come first).
"""

from __future__ import annotations

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


def child_exit(server, worker) -> None:
    """A dead worker's live gauges (the outbox backlog) stop counting; its counters stay summed."""
    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
