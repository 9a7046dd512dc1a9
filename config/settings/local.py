"""Local development: DEBUG on, a throwaway secret, local PostgreSQL, the SQS emulator, sandbox on loopback.

These defaults exist only here; base and production settings have none for a secret or a URL.
The shop runs on PostgreSQL only (docs/writes.md): `make run` creates DATABASE_URL's database if
it is missing, and says how to point DATABASE_URL at a server when none answers.
"""

import os

os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("DJANGO_SECRET_KEY", "insecure-local-only-key-never-used-in-production")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/flashsale")
os.environ.setdefault("SQS_ENDPOINT_URL", "http://127.0.0.1:9324")
os.environ.setdefault("PAYMENT_PROVIDER_URL", "http://127.0.0.1:8001")
os.environ.setdefault("PAYMENT_PROVIDER_API_KEY", "sk_test_sandbox")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/1")  # rate limits; down = not limited
os.environ.setdefault("LOG_FORMAT", "console")  # readable lines in `make run`; production: json
os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")  # the local SQS server accepts any credentials
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")

from .base import *  # noqa: F403

# Serve static files straight from the apps (no collectstatic needed for `make run`).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
