"""The drain study's result, one per run: plain data, no Django (the lab's report reads it too)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DrainRun:
    name: str  # drain-w<N>-l<limit>: also the tag in its orders' emails
    workers: int
    provider_limit: int  # 0 = none
    latency: float
    orders: int
    paid: int
    failed: int
    charged_twice: int
    not_charged: int
    task_errors: int
    seconds: float  # first claim to last payment
    rate: float  # paid / seconds
    ideal_rate: float
    efficiency: float
    overhead_ms: float  # per order and busy thread, beyond the provider's latency
    provider_peak: int  # most charges the sandbox ran at once
    worker_rss_mb: float
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # per process, plus machine and wall
    processes: int = 1  # worker processes the N threads were split over (N / processes each)

    @property
    def _layout(self) -> str:
        return f" ({self.processes}×{self.workers // self.processes})" if self.processes > 1 else ""

    @property
    def line(self) -> str:
        limit = self.provider_limit or "none"
        cpu = ", ".join(f"{k} {v:.1f}" for k, v in self.cpu_seconds.items() if k not in ("wall",))
        workers = f"{self.workers}{self._layout}"
        return (
            f"N={workers:<4} limit {limit:<4} orders {self.orders:<5} paid {self.paid:<5} "
            f"{self.rate:6.2f}/s of {self.ideal_rate:6.2f}  η {self.efficiency:.3f}  "
            f"overhead {self.overhead_ms:5.0f} ms/order  errors {self.task_errors}  "
            f"twice {self.charged_twice}  "
            f"RSS {self.worker_rss_mb:.0f} MB  CPU s: {cpu}"
        )
