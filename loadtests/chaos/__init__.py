"""Fault injection for the checkout: `make chaos` runs __main__.py; the scenarios are in scenarios.py."""

from config.timeouts import Timeouts

SCENARIO_NAMES = [
    "sigkill",
    "broker-outage",
    "duplicates",
    "race",
    "provider-faults",
    "poison",
    "idempotent-checkout",
    "oversell-race",
    "stock-release",
]
# Short timings so that recovery paths run within seconds instead of minutes: the same chain as
# production (config/timeouts.py), with tight margins.
FAST_TIMEOUTS = Timeouts.derive(payment=5, lease_margin=1, visibility_margin=4)
FAST_RECOVERY_ENV = {
    **FAST_TIMEOUTS.as_env(),
    "SQS_WAIT_TIME_SECONDS": "1",
    "SQS_MAX_RECEIVE_COUNT": "3",
    "PAYMENT_MAX_ATTEMPTS": "10",
    "SWEEP_GRACE_SECONDS": "1",
    "ORDER_REQUEUE_AFTER_SECONDS": "15",
}
