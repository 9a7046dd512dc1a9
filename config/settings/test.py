"""Test settings: local ones, with a file-backed SQLite test database that worker processes share."""

from .local import *  # noqa: F403
from .local import DATABASES

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # In-memory would be invisible to the worker subprocesses the end-to-end tests start.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / ".test-db.sqlite3")}  # noqa: F405
