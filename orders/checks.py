"""System checks: `manage.py check` (and every process start) refuses settings that break charge-once."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register

from config.timeouts import Timeouts


@register()
def timeout_chain(app_configs=None, **kwargs) -> list[Error]:
    chain = Timeouts(
        payment=settings.PAYMENT_TIMEOUT_SECONDS,
        lease=settings.ORDER_LEASE_SECONDS,
        visibility=settings.SQS_VISIBILITY_TIMEOUT,
        sync_payment=settings.SYNC_PAYMENT_TIMEOUT_SECONDS,
        web=settings.WEB_TIMEOUT_SECONDS,
        idempotency_lock=settings.IDEMPOTENCY_LOCK_SECONDS,
    )
    return [
        Error(f"{setting}: {why}.", hint=f"Change {setting} or unset it to derive it.", id="orders.E001")
        for setting, why in chain.problems()
    ]


@register()
def payment_provider_credentials(app_configs=None, **kwargs) -> list[Error]:
    if settings.PAYMENT_PROVIDER_URL and settings.PAYMENT_PROVIDER_API_KEY:
        return []
    return [
        Error(
            "PAYMENT_PROVIDER_URL and PAYMENT_PROVIDER_API_KEY must both be set.",
            hint="The workers cannot charge anyone without them.",
            id="orders.E002",
        )
    ]
