"""Test settings: local ones (PostgreSQL: Django creates `test_<NAME>` beside DATABASE_URL's database)."""

import os

# Tests (and the stacks they start, which inherit the environment) are not rate limited unless a
# test says so: one loopback client sends them all. Their cache keys carry a per-run prefix
# (conftest.py sets it and deletes the keys at the end).
os.environ.setdefault("CHECKOUT_RATE_LIMIT", "0")
os.environ.setdefault("ORDER_STATUS_RATE_LIMIT", "0")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/3")
# The provider's own timeout (the test sandbox reads it too) and the wait after an unknown outcome,
# short enough for tests whose orders go through one; tests that need another set it themselves.
os.environ.setdefault("PAYMENT_PROVIDER_TIMEOUT_SECONDS", "10")
os.environ.setdefault("PAYMENT_SETTLE_SECONDS", "12")

from .local import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
