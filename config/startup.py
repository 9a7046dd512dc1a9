"""Refuse to start a long-running process on settings that fail Django's system checks.

`manage.py` commands run the checks themselves; gunicorn (config/wsgi.py) and a Celery worker
(config/celery_app.py) do not, so they call this: a worker whose threads could exhaust the
database's connections, or whose timeouts break charge-once, stops at start-up with the check's
message instead of failing orders during a sale.
"""

from django.core import checks
from django.core.exceptions import ImproperlyConfigured


def refuse_broken_settings() -> None:
    errors = [message for message in checks.run_checks() if message.is_serious()]
    if errors:
        raise ImproperlyConfigured("settings fail the system checks:\n" + "\n".join(map(str, errors)))
