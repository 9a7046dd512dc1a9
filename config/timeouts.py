"""The timeout chain that "charge once" and idempotent checkout rest on, derived in one place.

    worker:  payment timeout  <  order lease  <  SQS visibility timeout
    web:     sync payment timeout  <  web (gunicorn) timeout  <  idempotency-key lock

A worker's provider call must end before its lease does (or a second worker may claim the order
while the first still charges), and the lease before SQS hands the message to another worker. A
sync checkout must give up before gunicorn kills its thread, and an Idempotency-Key must stay
locked longer than any request holding it can live. Settings derive the dependent values from the
independent ones here; `orders.checks` refuses a configuration that breaks the chain; the deploy,
the load lab and chaos derive from the same functions instead of restating numbers.

Django-free on purpose: the deploy tooling imports it without settings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LEASE_MARGIN_SECONDS = 30  # recording a result after the provider answered
VISIBILITY_MARGIN_SECONDS = 60  # claiming, polling and acking around the lease
IDEMPOTENCY_LOCK_MARGIN_SECONDS = 30
SQS_MAX_VISIBILITY_TIMEOUT = 12 * 3600


@dataclass(frozen=True)
class Timeouts:
    payment: float  # PAYMENT_TIMEOUT_SECONDS: a worker's provider call
    lease: int  # ORDER_LEASE_SECONDS
    visibility: int  # SQS_VISIBILITY_TIMEOUT
    sync_payment: float  # SYNC_PAYMENT_TIMEOUT_SECONDS
    web: int  # WEB_TIMEOUT_SECONDS: gunicorn's worker timeout
    idempotency_lock: int  # IDEMPOTENCY_LOCK_SECONDS

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
        lease_margin: int = LEASE_MARGIN_SECONDS,
        visibility_margin: int = VISIBILITY_MARGIN_SECONDS,
    ) -> Timeouts:
        """Fill in whatever is not given from what is, with the margins above (or tighter ones)."""
        lease = lease if lease is not None else math.ceil(payment) + lease_margin
        visibility = visibility if visibility is not None else lease + visibility_margin
        if idempotency_lock is None:
            idempotency_lock = web + IDEMPOTENCY_LOCK_MARGIN_SECONDS
        return cls(payment, lease, visibility, sync_payment, web, idempotency_lock)

    def as_env(self) -> dict[str, str]:
        """The chain as the environment variables the settings read, for processes a tool starts."""
        return {
            "PAYMENT_TIMEOUT_SECONDS": f"{self.payment:g}",
            "ORDER_LEASE_SECONDS": str(self.lease),
            "SQS_VISIBILITY_TIMEOUT": str(self.visibility),
            "SYNC_PAYMENT_TIMEOUT_SECONDS": f"{self.sync_payment:g}",
            "WEB_TIMEOUT_SECONDS": str(self.web),
            "IDEMPOTENCY_LOCK_SECONDS": str(self.idempotency_lock),
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
        if not self.sync_payment < self.web:
            found.append((
                "SYNC_PAYMENT_TIMEOUT_SECONDS",
                f"a sync checkout's payment wait ({self.sync_payment:g}s) must end before the web "
                f"timeout (WEB_TIMEOUT_SECONDS={self.web}s) kills the request",
            ))  # fmt: skip
        if not self.web < self.idempotency_lock:
            found.append((
                "IDEMPOTENCY_LOCK_SECONDS",
                f"an Idempotency-Key must stay locked ({self.idempotency_lock}s) longer than a request "
                f"can live (WEB_TIMEOUT_SECONDS={self.web}s), or a retry runs beside the first request",
            ))  # fmt: skip
        return found
