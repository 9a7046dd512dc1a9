"""Start a long-running process ready: refuse settings that fail Django's system checks, and warm
a web process before its first request.

`manage.py` commands run the checks themselves; gunicorn (config/wsgi.py) and a Celery worker
(config/celery_app.py) do not, so they call this: a worker whose threads could exhaust the
database's connections, or whose timeouts break charge-once, stops at start-up with the check's
message instead of failing orders during a sale.
"""

import logging
import os
import time

from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.urls import get_resolver

log = logging.getLogger(__name__)


def refuse_broken_settings() -> None:
    errors = [message for message in checks.run_checks() if message.is_serious()]
    if errors:
        raise ImproperlyConfigured("settings fail the system checks:\n" + "\n".join(map(str, errors)))


def warm_up_web() -> None:
    """Load and build, before the first request, what the first requests would otherwise wait for.

    A web process builds these on first use: the views (the URLconf), the database pool and the
    email validator's regular expressions. The payment-jobs publisher is the relay's to warm
    (orders/relay.py): an accept no longer publishes. Built on first use, these fell on the first
    orders of a sale and on every request beside them, and set the whole accept run's p99
    (docs/performance.md, "Figures behind the code's comments").

    The database does not have to answer: the pool connects in its own threads. A failure is logged
    and the process serves anyway.
    """
    # The order domain is loaded by now, not when settings are.
    from orders.api.serializers import validated_checkout

    started, cpu = time.monotonic(), time.process_time()
    try:
        _ = get_resolver().url_patterns
        validated_checkout({"email": "warm-up@example.com", "items": [{"sku": "warm-up", "quantity": 1}]})
        if (pool := getattr(connection, "pool", None)) is not None:
            pool.open()  # min_size connections, opened in the pool's threads; returns at once
    except Exception as exc:  # a warm-up is an optimisation: the process serves without it
        log.warning("web warm-up incomplete: %r", exc, extra={"pid": os.getpid()})
    log.info(
        "web warmed up in %.0f ms",
        (time.monotonic() - started) * 1000,
        extra={"warm_up_cpu_ms": round((time.process_time() - cpu) * 1000, 1), "pid": os.getpid()},
    )
