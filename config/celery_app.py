"""The Celery app. Settings come from Django's, under the ``CELERY_`` namespace."""

import os
import sys

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("flashsale")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def pool_named_on_command_line(argv: list[str]) -> str | None:
    """The pool a `celery worker` command line names with --pool/-P, if any."""
    for index, arg in enumerate(argv):
        if arg.startswith("--pool="):
            return arg.split("=", 1)[1]
        if arg in ("--pool", "-P") and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("-P") and len(arg) > 2:
            return arg[2:]
    return None


# Workers default to the threads pool (CELERY_WORKER_POOL), but Celery's CLI cannot tell an
# explicit `--pool=prefork` from its own default and would apply the setting instead: honour it.
if (_pool := pool_named_on_command_line(sys.argv)) is not None:
    app.conf.worker_pool = _pool
