"""The Celery app. Settings come from Django's, under the ``CELERY_`` namespace."""

import logging
import os
import time

import django
from celery import Celery, bootsteps
from celery.signals import worker_init, worker_ready
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from config.startup import refuse_broken_settings
from observability import heartbeat, metrics

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
log = logging.getLogger(__name__)

app = Celery("flashsale")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Celery's consumer, except that a message it cannot run is logged and left for SQS to dead-letter
# (Celery's acks one it cannot decode, and one without a task id stops the worker).
app.conf.worker_consumer = "queues.worker_consumer:Consumer"
app.autodiscover_tasks()


class Heartbeat(bootsteps.StartStopStep):
    """The worker's first beat, when its consumer starts (observability/heartbeat.py).

    Later beats come from the SQS poll loop (queues/sqs_transport.py), not from a timer: a timer on
    the event loop keeps beating for a consumer that stopped polling.
    """

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def start(self, consumer) -> None:
        heartbeat.beat("worker")


app.steps["consumer"].add(Heartbeat)


@worker_init.connect
def _refuse_broken_settings(sender=None, **kwargs) -> None:
    """A worker runs Django's system checks before it consumes, as `manage.py` commands do.

    The checks see the concurrency the worker really runs (`--concurrency` wins over the setting).
    Celery logs and swallows a signal handler's exception; SystemExit stops the worker for real.
    """
    django.setup()
    if isinstance(getattr(sender, "concurrency", None), int):
        settings.CELERY_WORKER_CONCURRENCY = sender.concurrency
    try:
        refuse_broken_settings()
    except ImproperlyConfigured as exc:
        raise SystemExit(f"worker refused to start: {exc}") from exc
    # The threads pool shares this process's registry; under prefork the children's counts would
    # not reach it (prefork would need multiprocess mode, as the web has).
    metrics.serve(settings.WORKER_METRICS_PORT, settings.METRICS_ADDR)


@worker_ready.connect
def _log_start_up_cost(sender=None, **kwargs) -> None:
    """What starting cost the worker, logged as its consumer loop begins: the CPU it has used so far.

    Celery sends worker_ready from the process that consumes (the threads pool's only one) just
    before its event loop starts, so the figure is all start-up and no task. The load lab counts a
    worker's CPU from it; the lab's own notice of "ready" comes after the first tasks may have run.
    """
    cpu = time.process_time()
    log.info(
        "worker consuming after %.2f s of start-up CPU", cpu, extra={"startup_cpu_seconds": round(cpu, 6)}
    )
