"""The wiring, and nothing else: settings, URLs, WSGI, the Celery app, gunicorn's hooks, the process
commands and their start-up checks. The top layer of pyproject.toml's layers contract: it imports the
apps and no app imports it (they read settings through django.conf); only the tools above it do."""

from .celery_app import app as celery_app

__all__ = ("celery_app",)
