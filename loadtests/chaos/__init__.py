"""Fault injection for the checkout: `make chaos` runs __main__.py; the scenarios are in scenarios.py."""

from core.timeouts import Timeouts

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
    "per-customer-race",  # a per-customer limit under 20 racers a customer, with declines
    # Exactly once against a provider with real idempotency semantics (exactly_once.py, relay_scenarios.py)
    "provider-409",
    "lost-answer",
    "slow-drip",
    "db-restart-after-charge",
    "relay-and-web-killed",
]
# Short timings so that recovery paths run within seconds instead of minutes: the same chain as
# production (core/timeouts.py), with tight margins.
# A sync checkout gives up after 1 s (charges take longer in provider-409); the provider's own
# timeout is 3 s and an unknown outcome waits 5 s for it to settle.
FAST_TIMEOUTS = Timeouts.derive(
    payment=5, sync_payment=1, provider=3, lease_margin=1, visibility_margin=4, settle_margin=2
)
FAST_RECOVERY_ENV = {
    **FAST_TIMEOUTS.as_env(),
    "SQS_WAIT_TIME_SECONDS": "1",
    "SQS_MAX_RECEIVE_COUNT": "3",
    "PAYMENT_MAX_ATTEMPTS": "10",
    "SWEEP_GRACE_SECONDS": "1",
    "RELAY_BACKOFF_MAX_SECONDS": "1",
    "ORDER_REQUEUE_AFTER_SECONDS": "15",
}
