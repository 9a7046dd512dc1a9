"""What the production stack is sized by: plain values, CDK-free, so the cost command reads them fast."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from capacity.sizing import ideal_rate
from config.timeouts import Timeouts

# The seed's provider: 3 s per charge. One worker thread charges one order at a time.
DEFAULT_PAYMENT_LATENCY = 3.0


@dataclass(frozen=True)
class ShopSettings:
    """`python -m deploy` fills these from its flags (and a lab report); the stack synthesizes from them."""

    name: str = "flashsale"
    # Fargate CPU units : MiB per task
    web_size: tuple[int, int] = (512, 1024)
    worker_size: tuple[int, int] = (512, 1024)
    sweeper_size: tuple[int, int] = (256, 512)
    web_count: int = 2
    worker_concurrency: int = 20  # threads per worker task (WORKER_CONCURRENCY)
    min_workers: int = 1
    max_workers: int = 20
    # Orders per second ONE worker thread pays: the lab's measured rate (`python -m deploy recommend
    # --report latest`), else the ideal 1 / latency of capacity.sizing.
    per_worker_rate: float = field(default_factory=lambda: ideal_rate(1, latency=DEFAULT_PAYMENT_LATENCY))
    acceptable_wait_seconds: int = 60  # how long a payment job may wait in SQS at steady state
    oldest_message_alarm_seconds: int = 300  # ORDER_REQUEUE_AFTER_SECONDS: the sweeper deems it lost
    web_5xx_alarm_percent: float = 5.0
    lambda_memory_mb: int = 512
    lambda_batch_size: int = 1
    lambda_max_concurrency: int = 50  # each environment takes a DB connection around claim/record
    log_retention_days: int = 30
    max_receive_count: int = 5  # SQS_MAX_RECEIVE_COUNT
    timeouts: Timeouts = field(default_factory=Timeouts.derive)
    db_instance: str = "t4g.micro"
    # What the instance accepts (t4g.micro: PostgreSQL's default formula gives ~80 on 1 GiB), less
    # room for the operator's psql and RDS's own sessions. Split across every process that may run.
    db_max_connections: int = 80
    db_reserved_connections: int = 5
    web_processes: int = 2  # gunicorn processes per web task (WEB_PROCESSES)
    redis_node: str = "cache.t4g.micro"  # the rate limits' shared counters (REDIS_URL)

    @property
    def database_processes(self) -> int:
        """Processes that may hold connections at once: web, workers at their maximum, sweeper, migrate.

        With the Lambda consumer the workers are scaled to 0 and each Lambda environment (up to its
        maximum concurrency) holds one connection instead; the larger of the two counts.
        """
        consumers = max(self.max_workers, self.lambda_max_concurrency)
        return self.web_count * self.web_processes + consumers + 2

    @property
    def connections_per_process(self) -> int:
        """DB_POOL_MAX_SIZE and DATABASE_CONNECTION_BUDGET of every task: all of them fit the instance."""
        usable = self.db_max_connections - self.db_reserved_connections
        per_process = usable // self.database_processes
        if per_process < 1:
            raise ValueError(
                f"{self.database_processes} processes cannot share {usable} database connections: "
                "a larger instance, RDS Proxy or fewer tasks"
            )
        return per_process

    @property
    def task_rate(self) -> float:
        """Orders per second one worker task pays: concurrency * the measured per-thread rate."""
        return self.worker_concurrency * self.per_worker_rate

    @property
    def backlog_target(self) -> int:
        """Messages per worker task that one task drains within the acceptable wait (AWS's recipe)."""
        return max(1, math.floor(round(self.acceptable_wait_seconds * self.task_rate, 6)))
