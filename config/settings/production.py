"""Production (ECS): everything from the environment; no secret, database or queue URL has a default.

Base settings already refuse to load without DJANGO_SECRET_KEY, DATABASE_URL, REDIS_URL,
PAYMENT_PROVIDER_URL, PAYMENT_PROVIDER_API_KEY and (with no SQS_ENDPOINT_URL) SQS_QUEUE_URL and
SQS_DLQ_URL; this module adds DJANGO_ALLOWED_HOSTS. `manage.py check --deploy` passes clean (HSTS
preload, opt-in with DJANGO_SECURE_HSTS_PRELOAD=1, is the one warning silenced while it is off).
"""

from typing import Any

from .base import *  # noqa: F403
from .base import CONTENT_SECURITY_POLICY, REST_FRAMEWORK, env

DEBUG = False
# CloudWatch metrics from the logs (EMF lines), on unless asked otherwise. Logs: JSON (base default).
METRICS_EMF = env.bool("METRICS_EMF", default=True)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")  # no default: an empty list would refuse every request

# TLS ends at the ALB, which says so in X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
# The ALB's health check speaks plain HTTP to the task (and is answered before any middleware,
# observability/health.py); listed here too so that a reordering can never redirect it.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
# Preload is opt-in: once browsers ship the domain in their preload list, leaving it takes months
# and covers every subdomain. Off, `check --deploy` would warn (security.W021): silenced, as chosen.
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Behind the ALB: a client is the address the ALB saw, for the rate limits and the admin's lockout
# alike (base.py, core/client_ip.py).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=1)
REST_FRAMEWORK = {**REST_FRAMEWORK, "NUM_PROXIES": TRUSTED_PROXY_COUNT}

_directives: dict[str, Any] = {**CONTENT_SECURITY_POLICY["DIRECTIVES"], "upgrade-insecure-requests": True}
CONTENT_SECURITY_POLICY = {"DIRECTIVES": _directives}
