"""Local development: DEBUG on, a throwaway secret, the SQS emulator and sandbox on loopback."""

import os

os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("DJANGO_SECRET_KEY", "insecure-local-only-key-never-used-in-production")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
os.environ.setdefault("SQS_ENDPOINT_URL", "http://127.0.0.1:9324")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")  # moto accepts any credentials
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")

from .base import *  # noqa: F403

# Serve static files straight from the apps (no collectstatic needed for `make run`).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
