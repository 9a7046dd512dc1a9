"""Figures derived from raw measurements: processing rate, efficiency, drain time. No I/O here."""

from __future__ import annotations

from dataclasses import asdict, dataclass


def processing_rate(*, paid: int, first_claim: float | None, end: float | None) -> float:
    """Paid orders per second while the workers were busy: from the first claim to `end`.

    `end` is the last payment when the queue drained, else the moment the run was stopped.
    Counting from the first claim (not from the start of the load) keeps worker start-up and the
    first charge's latency out of the rate.
    """
    if not paid or first_claim is None or end is None or end <= first_claim:
        return 0.0
    return paid / (end - first_claim)


@dataclass(frozen=True)
class Drain:
    kind: str  # "measured": the queue emptied within the cap; "extrapolated": from the measured rate
    seconds: float | None  # from the end of the load until nothing is left; None if it never would
    observed_seconds: float  # how long we watched after the load
    remaining_at_stop: int  # orders not yet final when we stopped watching

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def label(self) -> str:
        if self.seconds is None:
            return "never (nothing paid)"
        text = human_seconds(self.seconds)
        return text if self.kind == "measured" else f"{text} (extrapolated)"


def drain_time(
    *, load_end: float, drained_at: float | None, stopped_at: float, remaining: int, rate: float
) -> Drain:
    """Measured drain when the queue emptied, else what is left divided by the measured rate."""
    observed = stopped_at - load_end
    if drained_at is not None:
        return Drain("measured", max(0.0, drained_at - load_end), observed, 0)
    if rate <= 0:
        return Drain("extrapolated", None, observed, remaining)
    return Drain("extrapolated", observed + remaining / rate, observed, remaining)


def efficiency(measured: float, ideal: float) -> float:
    return measured / ideal if ideal > 0 else 0.0


def human_seconds(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
