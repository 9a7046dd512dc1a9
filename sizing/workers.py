"""How many payment workers a target order rate needs: the seed's `rate * latency`, with its limits.

Each worker charges one order at a time, so N workers pay at most N / latency orders per second,
and never more than the provider's own concurrency limit allows: `limit / latency`. A measured
efficiency (paid per second ÷ that ideal, from `make experiment`) corrects for what the ideal
ignores: CPU, the database and the broker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Sizing:
    """Workers for a target rate, and whether the provider lets that rate through at all."""

    rate: float  # orders per second to keep up with
    latency: float  # seconds per charge at the provider
    provider_limit: int  # charges the provider runs at once; 0 = no limit
    efficiency: float  # measured ÷ ideal processing rate, 1.0 = the ideal

    @property
    def ideal_workers(self) -> int:
        """The seed's formula: workers = rate * latency (rounded up)."""
        return math.ceil(round(self.rate * self.latency, 9))

    @property
    def workers(self) -> int:
        """Workers needed once the measured efficiency is taken into account."""
        return math.ceil(round(self.rate * self.latency / self.efficiency, 9))

    @property
    def provider_ceiling(self) -> float | None:
        """Orders per second the provider can take at all, whatever the worker count (None: no limit)."""
        return self.provider_limit / self.latency if self.provider_limit else None

    @property
    def reachable(self) -> bool:
        """Return whether the provider's own limit allows the target rate."""
        ceiling = self.provider_ceiling
        return ceiling is None or self.rate <= ceiling


def ideal_rate(workers: int, *, latency: float, provider_limit: int = 0) -> float:
    """Orders per second N workers pay in theory: N / latency, capped at the provider's limit."""
    slots = min(workers, provider_limit) if provider_limit else workers
    return slots / latency
