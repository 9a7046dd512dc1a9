"""The shop's metrics, defined once: Prometheus series and, when enabled, the same events as
CloudWatch EMF lines (observability.emf).

The shop calls the verbs below (`order_accepted`, `charge_attempted`, ...) at the one place each
thing happens; nothing else creates a metric. Labels are small closed sets (mode, outcome, scope):
never an order id.

Processes and registries:
- web (gunicorn, 2+ processes): prometheus_client's multiprocess mode. config/gunicorn.py gives
  each start a fresh PROMETHEUS_MULTIPROC_DIR before any worker imports this module, marks a dead
  worker's files, and serves the merged registry on WEB_METRICS_PORT from the master.
- worker (Celery, threads pool: one process) and sweeper: the default registry, served on
  WORKER_METRICS_PORT / SWEEPER_METRICS_PORT by `serve()`.
"""

from __future__ import annotations

import logging
import os

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client import multiprocess as _multiprocess

from .emf import Emf

log = logging.getLogger(__name__)

PREFIX = "flashsale"
# The accept is milliseconds, a sync checkout up to its 30 s timeout.
CHECKOUT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# From accepted to paid: seconds when workers keep up, many minutes in a flash sale's backlog.
PAYMENT_BUCKETS = (1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)
PROVIDER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 120)

ORDERS = Counter(
    f"{PREFIX}_orders",
    "Orders reaching a status (accepted, paid, failed), by checkout mode",
    ["status", "mode"],
)
CHECKOUT_SECONDS = Histogram(
    f"{PREFIX}_checkout_duration_seconds",
    "Time to answer a checkout request, by mode (async: the 202; sync: includes the charge)",
    ["mode"],
    buckets=CHECKOUT_BUCKETS,
)
ACCEPTED_TO_PAID_SECONDS = Histogram(
    f"{PREFIX}_order_accepted_to_paid_seconds",
    "Time from an order's acceptance to its payment",
    buckets=PAYMENT_BUCKETS,
)
CHARGE_ATTEMPTS = Counter(
    f"{PREFIX}_charge_attempts",
    "Provider calls by their answer: charged, declined, rejected, unavailable, unauthorized",
    ["outcome"],
)
PROVIDER_SECONDS = Histogram(
    f"{PREFIX}_provider_call_duration_seconds",
    "Time the payment provider took to answer",
    buckets=PROVIDER_BUCKETS,
)
CHARGE_OUTCOMES = Counter(
    f"{PREFIX}_charge_outcomes", "Charge workflow results: paid, failed, retry, skipped", ["outcome"]
)
IDEMPOTENT_REPLAYS = Counter(
    f"{PREFIX}_idempotent_replays", "Checkouts answered from a stored Idempotency-Key response", ["scope"]
)
THROTTLED = Counter(
    f"{PREFIX}_throttled_requests", "Requests refused with a 429, by rate-limit scope", ["scope"]
)
SYNC_CHECKOUT_QUEUE = Counter(
    f"{PREFIX}_sync_checkout_queue",
    "Sync checkouts the checkout queue admitted, or answered 503 checkout_queue (queued)",
    ["answer"],
)
# The outbox's relay (orders/relay.py): jobs it published or SQS refused, and how long each order
# waited for its job to go out (placed → handed to SQS).
RELAYED = Counter(f"{PREFIX}_relay_jobs", "Payment jobs the relay published, or SQS refused", ["outcome"])
RELAY_WAIT_SECONDS = Histogram(
    f"{PREFIX}_relay_wait_seconds",
    "From the order's accept to its payment job's publish by the relay",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
# Sampled by the sweeper once per pass (not per request). `mostrecent` is for multiprocess mode only.
SQS_WAITING = Gauge(
    f"{PREFIX}_sqs_waiting_messages",
    "Payment jobs waiting in SQS (visible + delayed)",
    multiprocess_mode="mostrecent",
)
SQS_IN_FLIGHT = Gauge(
    f"{PREFIX}_sqs_in_flight_messages",
    "Payment jobs received by a worker, not yet deleted",
    multiprocess_mode="mostrecent",
)
SQS_DEAD_LETTERED = Gauge(
    f"{PREFIX}_sqs_dead_lettered_messages",
    "Messages in the dead-letter queue",
    multiprocess_mode="mostrecent",
)
OLDEST_WAITING_AGE = Gauge(
    f"{PREFIX}_oldest_waiting_order_age_seconds",
    "Seconds since the oldest accepted (not yet claimed) order was placed; 0 when none waits",
    multiprocess_mode="mostrecent",
)
UNPUBLISHED_ORDERS = Gauge(
    f"{PREFIX}_outbox_unpublished_orders",
    "Accepted orders SQS has not taken a payment job for (enqueued_at null): the relay's to publish, "
    "and the sweeper's when no relay runs",
    multiprocess_mode="mostrecent",
)
SAMPLE_FAILURES = Counter(
    f"{PREFIX}_sweeper_sample_failures", "Sweeper passes that could not read a gauge", ["source"]
)

# EMF metric names (CloudWatch style), one per event; the dashboards chart these.
EMF_NAMES = {
    "accepted": "OrdersAccepted",
    "paid": "OrdersPaid",
    "failed": "OrdersFailed",
}
# Every EMF metric the verbs below write (a test holds this list to what they write).
EMF_METRICS = (
    *EMF_NAMES.values(),
    "AcceptedToPaidLatency",
    "CheckoutLatency",
    "ChargeAttempts",
    "ProviderLatency",
    "ChargeOutcomes",
    "IdempotentReplays",
    "ThrottledRequests",
    "SyncCheckoutQueue",
    "SqsWaiting",
    "SqsInFlight",
    "SqsDeadLettered",
    "OldestWaitingOrderAge",
    "OutboxUnpublished",
    "RelayJobs",
)

_emf: Emf | None = None


def enable_emf(namespace: str, *, flush_seconds: float = 10) -> Emf:
    """Also write every metric event as EMF lines on stdout (production: ECS, Lambda)."""
    global _emf
    _emf = Emf(namespace, flush_seconds=flush_seconds)
    return _emf


def disable_emf() -> None:
    global _emf
    _emf = None


def emf() -> Emf | None:
    return _emf


# --- the events ---------------------------------------------------------------------------------
def order_reached(status: str, mode: str) -> None:
    """An order was accepted, paid or failed (orders/transitions.py, after commit)."""
    ORDERS.labels(status=status, mode=mode).inc()
    if _emf and status in EMF_NAMES:
        _emf.count(EMF_NAMES[status], Mode=mode)


def order_paid_after(seconds: float) -> None:
    ACCEPTED_TO_PAID_SECONDS.observe(seconds)
    if _emf:
        _emf.observe("AcceptedToPaidLatency", seconds)


def checkout_answered(mode: str, seconds: float) -> None:
    CHECKOUT_SECONDS.labels(mode=mode).observe(seconds)
    if _emf:
        _emf.observe("CheckoutLatency", seconds * 1000, unit="Milliseconds", Mode=mode)


def charge_attempted(outcome: str, seconds: float) -> None:
    """One provider call and its answer (orders/charging.py)."""
    CHARGE_ATTEMPTS.labels(outcome=outcome).inc()
    PROVIDER_SECONDS.observe(seconds)
    if _emf:
        _emf.count("ChargeAttempts", Outcome=outcome)
        _emf.observe("ProviderLatency", seconds)


def charge_finished(outcome: str) -> None:
    CHARGE_OUTCOMES.labels(outcome=outcome).inc()
    if _emf:
        _emf.count("ChargeOutcomes", Outcome=outcome)


def idempotent_replay(scope: str) -> None:
    IDEMPOTENT_REPLAYS.labels(scope=scope).inc()
    if _emf:
        _emf.count("IdempotentReplays", Scope=scope)


def throttled(scope: str) -> None:
    THROTTLED.labels(scope=scope).inc()
    if _emf:
        _emf.count("ThrottledRequests", Scope=scope)


def sync_checkout_queue(answer: str) -> None:
    """A sync checkout `admitted` to the provider, or `queued` (a 503 checkout_queue)."""
    SYNC_CHECKOUT_QUEUE.labels(answer=answer).inc()
    if _emf:
        _emf.count("SyncCheckoutQueue", Answer=answer)


def relayed(*, published: int, refused: int, waited: list[float]) -> None:
    """One relay pass: its jobs by outcome, and each order's wait from accept to publish."""
    if published:
        RELAYED.labels(outcome="published").inc(published)
    if refused:
        RELAYED.labels(outcome="refused").inc(refused)
    for seconds in waited:
        RELAY_WAIT_SECONDS.observe(seconds)
    if _emf:
        for outcome, jobs in (("published", published), ("refused", refused)):
            if jobs:
                _emf.count("RelayJobs", jobs, Outcome=outcome)


def queue_sampled(*, waiting: int, in_flight: int, dead_lettered: int) -> None:
    SQS_WAITING.set(waiting)
    SQS_IN_FLIGHT.set(in_flight)
    SQS_DEAD_LETTERED.set(dead_lettered)
    if _emf:
        _emf.gauge("SqsWaiting", waiting)
        _emf.gauge("SqsInFlight", in_flight)
        _emf.gauge("SqsDeadLettered", dead_lettered)


def backlog_sampled(*, oldest_waiting_seconds: float | None, unpublished: int) -> None:
    OLDEST_WAITING_AGE.set(oldest_waiting_seconds or 0)
    UNPUBLISHED_ORDERS.set(unpublished)
    if _emf:
        _emf.gauge("OldestWaitingOrderAge", oldest_waiting_seconds or 0, unit="Seconds")
        _emf.gauge("OutboxUnpublished", unpublished)


def sample_failed(source: str) -> None:
    SAMPLE_FAILURES.labels(source=source).inc()


# --- serving ------------------------------------------------------------------------------------
def multiprocess_registry() -> CollectorRegistry:
    """The web's processes merged (PROMETHEUS_MULTIPROC_DIR): what its metrics port serves."""
    registry = CollectorRegistry()
    _multiprocess.MultiProcessCollector(registry)
    return registry


def serve(port: int, addr: str = "127.0.0.1", registry: CollectorRegistry | None = None) -> None:
    """Serve /metrics on its own port from a daemon thread; 0 = off. Not the public port on purpose."""
    if not port:
        return
    start_http_server(port, addr=addr, registry=REGISTRY if registry is None else registry)
    log.info("metrics on http://%s:%d/metrics", addr, port, extra={"pid": os.getpid()})
