"""The timeout chain that "charge once" and idempotent checkout rest on, derived in one place.

    worker:  payment timeout  <  order lease  <  SQS visibility timeout
    web:     sync payment timeout  <  web (gunicorn) timeout  <  idempotency-key lock
    Lambda:  6 x function timeout (the lease)  ≤  its queue's visibility timeout  ≤  SQS's 12 h
    unknown: provider's own timeout  <  settle wait  ≤  SQS's longest message delay

An attempt whose outcome is unknown (our deadline passed, the connection dropped, a 5xx, a 409 for
the key in flight) leaves the order waiting `settle` seconds from the attempt's start: by then the
provider has finished or abandoned every request sent with the key (its own timeout, plus the
processing that started before it), so the next attempt gets the answer replayed, and a lookup of
the key is definitive.

A worker's provider call must end before its lease does (or a second worker may claim the order
while the first still charges), and the lease before SQS hands the message to another worker. A
sync checkout must give up before gunicorn kills its thread, and an Idempotency-Key must stay
locked longer than any request holding it can live. AWS advises that the queue feeding a Lambda
hide a message for at least six times the function's timeout, so that the event source mapping can
retry a batch Lambda throttled without the message coming back meanwhile; the Lambda consumer's
function timeout is the lease (it bounds one charge), so its queue's visibility follows from it too.
The ECS workers keep `visibility`: the stack sets the queue to one or the other by its `Consumer`.
Settings derive the dependent values from the independent ones here; `orders.checks` refuses a
configuration that breaks the chain; the deploy, the load lab and chaos derive from the same
functions instead of restating numbers.

Django-free on purpose: the deploy tooling imports it without settings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LEASE_MARGIN_SECONDS = 30  # recording a result after the provider answered
VISIBILITY_MARGIN_SECONDS = 60  # claiming, polling and acking around the lease
IDEMPOTENCY_LOCK_MARGIN_SECONDS = 30
SETTLE_MARGIN_SECONDS = 30  # a charge that started just before the provider's own timeout finishing
SQS_MAX_VISIBILITY_TIMEOUT = 12 * 3600
SQS_MAX_DELAY_SECONDS = 900
LAMBDA_VISIBILITY_FACTOR = 6  # AWS: the source queue's visibility ≥ 6 × the function's timeout


def lambda_visibility(function_timeout: float) -> int:
    """The visibility timeout of an SQS queue that feeds a Lambda with this timeout: six times it."""
    return LAMBDA_VISIBILITY_FACTOR * math.ceil(function_timeout)


@dataclass(frozen=True)
class Timeouts:
    payment: float  # PAYMENT_TIMEOUT_SECONDS: a worker's provider call
    lease: int  # ORDER_LEASE_SECONDS
    visibility: int  # SQS_VISIBILITY_TIMEOUT
    sync_payment: float  # SYNC_PAYMENT_TIMEOUT_SECONDS
    web: int  # WEB_TIMEOUT_SECONDS: gunicorn's worker timeout
    idempotency_lock: int  # IDEMPOTENCY_LOCK_SECONDS
    provider: float = 90  # PAYMENT_PROVIDER_TIMEOUT_SECONDS: the provider's own request timeout
    settle: int = 120  # PAYMENT_SETTLE_SECONDS: after an unknown outcome, no attempt sooner

    @classmethod
    def derive(
        cls,
        *,
        payment: float = 120,
        sync_payment: float = 30,
        web: int = 120,
        lease: int | None = None,
        visibility: int | None = None,
        idempotency_lock: int | None = None,
        provider: float = 90,
        settle: int | None = None,
        lease_margin: int = LEASE_MARGIN_SECONDS,
        visibility_margin: int = VISIBILITY_MARGIN_SECONDS,
        settle_margin: int = SETTLE_MARGIN_SECONDS,
    ) -> Timeouts:
        """Fill in whatever is not given from what is, with the margins above (or tighter ones)."""
        lease = lease if lease is not None else math.ceil(payment) + lease_margin
        visibility = visibility if visibility is not None else lease + visibility_margin
        if idempotency_lock is None:
            idempotency_lock = web + IDEMPOTENCY_LOCK_MARGIN_SECONDS
        settle = settle if settle is not None else math.ceil(provider) + settle_margin
        return cls(payment, lease, visibility, sync_payment, web, idempotency_lock, provider, settle)

    @property
    def lambda_function(self) -> int:
        """The Lambda consumer's function timeout: the lease, which bounds one charge."""
        return self.lease

    @property
    def lambda_visibility(self) -> int:
        """The payment queue's visibility timeout while the Lambda consumes it (the stack's Consumer)."""
        return lambda_visibility(self.lambda_function)

    def as_env(self) -> dict[str, str]:
        """The chain as the environment variables the settings read, for processes a tool starts."""
        return {
            "PAYMENT_TIMEOUT_SECONDS": f"{self.payment:g}",
            "ORDER_LEASE_SECONDS": str(self.lease),
            "SQS_VISIBILITY_TIMEOUT": str(self.visibility),
            "SYNC_PAYMENT_TIMEOUT_SECONDS": f"{self.sync_payment:g}",
            "WEB_TIMEOUT_SECONDS": str(self.web),
            "IDEMPOTENCY_LOCK_SECONDS": str(self.idempotency_lock),
            "PAYMENT_PROVIDER_TIMEOUT_SECONDS": f"{self.provider:g}",
            "PAYMENT_SETTLE_SECONDS": str(self.settle),
        }

    def problems(self) -> list[tuple[str, str]]:
        """Each broken link of the chain as (the setting to change, why)."""
        found = []
        if not self.payment < self.lease:
            found.append((
                "ORDER_LEASE_SECONDS",
                f"the order lease ({self.lease}s) must outlast a worker's payment call "
                f"(PAYMENT_TIMEOUT_SECONDS={self.payment:g}s), or a second worker may claim an order "
                "that is still being charged",
            ))  # fmt: skip
        if not self.lease < self.visibility:
            found.append((
                "SQS_VISIBILITY_TIMEOUT",
                f"the SQS visibility timeout ({self.visibility}s) must exceed the order lease "
                f"(ORDER_LEASE_SECONDS={self.lease}s), or SQS redelivers a job that is still running",
            ))  # fmt: skip
        if self.visibility > SQS_MAX_VISIBILITY_TIMEOUT:
            found.append((
                "SQS_VISIBILITY_TIMEOUT",
                f"SQS allows at most {SQS_MAX_VISIBILITY_TIMEOUT}s, not {self.visibility}s",
            ))  # fmt: skip
        if self.lambda_visibility > SQS_MAX_VISIBILITY_TIMEOUT:
            found.append((
                "ORDER_LEASE_SECONDS",
                f"the Lambda consumer's queue must hide a message {LAMBDA_VISIBILITY_FACTOR} times its "
                f"function timeout (the lease, {self.lease}s): {self.lambda_visibility}s, over SQS's "
                f"maximum of {SQS_MAX_VISIBILITY_TIMEOUT}s",
            ))  # fmt: skip
        if not self.sync_payment < self.web:
            found.append((
                "SYNC_PAYMENT_TIMEOUT_SECONDS",
                f"a sync checkout's payment wait ({self.sync_payment:g}s) must end before the web "
                f"timeout (WEB_TIMEOUT_SECONDS={self.web}s) kills the request",
            ))  # fmt: skip
        if not self.provider < self.settle:
            found.append((
                "PAYMENT_SETTLE_SECONDS",
                f"after an unknown outcome the next attempt must wait ({self.settle}s) longer than the "
                f"provider's own timeout (PAYMENT_PROVIDER_TIMEOUT_SECONDS={self.provider:g}s), or it "
                "meets the first request still in flight, and a lookup of the key may miss its charge",
            ))  # fmt: skip
        if self.settle > SQS_MAX_DELAY_SECONDS:
            found.append((
                "PAYMENT_SETTLE_SECONDS",
                f"the wait after an unknown outcome is an SQS message delay: at most "
                f"{SQS_MAX_DELAY_SECONDS}s, not {self.settle}s",
            ))  # fmt: skip
        if not self.web < self.idempotency_lock:
            found.append((
                "IDEMPOTENCY_LOCK_SECONDS",
                f"an Idempotency-Key must stay locked ({self.idempotency_lock}s) longer than a request "
                f"can live (WEB_TIMEOUT_SECONDS={self.web}s), or a retry runs beside the first request",
            ))  # fmt: skip
        return found
