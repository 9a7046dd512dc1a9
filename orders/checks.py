"""System checks: `manage.py check` (and every process start) refuses settings that break charge-once."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Warning, register

from core.timeouts import Timeouts

from .api.throttling import parse_rate


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


@register()
def database_connection_budget(app_configs=None, **kwargs) -> list[Error]:
    threads = max(settings.CELERY_WORKER_CONCURRENCY, settings.WEB_THREADS)
    problem = connection_budget_problem(
        settings.DATABASES["default"], budget=settings.DATABASE_CONNECTION_BUDGET, threads=threads
    )
    if problem is None:
        return []
    message, hint = problem
    return [Error(message, hint=hint, id="orders.E003")]


def connection_budget_problem(database: dict, *, budget: int, threads: int) -> tuple[str, str] | None:
    """Why a process could open more connections than its budget, and the fix; None if it cannot.

    With the pool a process opens at most its max_size; without it, every worker thread (or web
    thread) may hold its own.
    """
    pool = database.get("OPTIONS", {}).get("pool")
    if pool:
        size = pool["max_size"] if isinstance(pool, dict) else 100  # psycopg_pool's own default
        if size <= budget:
            return None
        why, fix = (
            f"the pool's max_size {size}",
            "Lower DB_POOL_MAX_SIZE or raise DATABASE_CONNECTION_BUDGET.",
        )
    else:
        if threads <= budget:
            return None
        why = f"{threads} threads (WORKER_CONCURRENCY / WEB_THREADS), each with its own connection"
        fix = "Turn the pool on (DB_POOL_MAX_SIZE > 0) or raise DATABASE_CONNECTION_BUDGET."
    message = f"one process may open {why}, more than its budget of {budget} connections."
    return f"DATABASE_CONNECTION_BUDGET: {message}", fix


@register()
def rate_limits(app_configs=None, **kwargs) -> list[Error]:
    problems = []
    for setting in ("CHECKOUT_RATE_LIMIT", "ORDER_STATUS_RATE_LIMIT"):
        try:
            parse_rate(getattr(settings, setting))
        except ValueError as exc:
            problems.append(
                Error(
                    f"{setting}: {exc}.",
                    hint="Use DRF's syntax, e.g. 20/min, or 0 for none.",
                    id="orders.E004",
                )
            )
    return problems


@register()
def sync_checkout_queue(app_configs=None, **kwargs) -> list[Warning]:
    """The queue's promise: an admitted sync checkout ends before the sync timeout. It may wait for
    every charge ahead of it on deck, then its own: (C + ON_DECK) / C charges in all.

    A warning, not an error: a process that never answers a sync checkout (a worker, the sweeper)
    may run with a short sync timeout and no word of the provider's concurrency (as chaos's do)."""
    slots, on_deck = settings.PAYMENT_PROVIDER_CONCURRENCY, settings.SYNC_CHECKOUT_ON_DECK
    if not settings.SYNC_CHECKOUT_QUEUE or slots <= 0:
        return []
    longest, timeout = (
        (slots + on_deck) / slots * settings.SYNC_CHECKOUT_CHARGE_SECONDS,
        settings.SYNC_PAYMENT_TIMEOUT_SECONDS,
    )
    if on_deck >= 0 and longest < timeout:
        return []
    return [
        Warning(
            f"SYNC_CHECKOUT_ON_DECK: {on_deck} waiting at a provider of {slots} slots and "
            f"{settings.SYNC_CHECKOUT_CHARGE_SECONDS:g} s a charge make an admitted sync checkout wait "
            f"up to {longest:g} s, not under SYNC_PAYMENT_TIMEOUT_SECONDS ({timeout:g}).",
            hint="Lower SYNC_CHECKOUT_ON_DECK (0 or more; 0: none on deck).",
            id="orders.W005",
        )
    ]
