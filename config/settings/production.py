"""Production (ECS): everything from the environment; no secret, database or queue URL has a default.

Base settings already refuse to load without DJANGO_SECRET_KEY, DATABASE_URL, PAYMENT_PROVIDER_URL,
PAYMENT_PROVIDER_API_KEY and (with no SQS_ENDPOINT_URL) SQS_QUEUE_URL and SQS_DLQ_URL.
"""

from .base import *  # noqa: F403
from .base import env

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
