"""Fault injection for the checkout: `make chaos` runs __main__.py; the scenarios are in scenarios.py."""

SCENARIO_NAMES = [
    "sigkill",
    "broker-outage",
    "duplicates",
    "race",
    "provider-faults",
    "poison",
    "idempotent-checkout",
]
# Short timings so that recovery paths run within seconds instead of minutes.
FAST_RECOVERY_ENV = {
    "PAYMENT_TIMEOUT_SECONDS": "5",
    "ORDER_LEASE_SECONDS": "6",
    "SQS_VISIBILITY_TIMEOUT": "10",
    "SQS_WAIT_TIME_SECONDS": "1",
    "SQS_MAX_RECEIVE_COUNT": "3",
    "PAYMENT_MAX_ATTEMPTS": "10",
    "SWEEP_GRACE_SECONDS": "1",
    "ORDER_REQUEUE_AFTER_SECONDS": "15",
}
