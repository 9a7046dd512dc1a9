"""What the production stack is sized by: plain values, CDK-free, so the cost command reads them fast."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from core.timeouts import Timeouts
from sizing.workers import ideal_rate

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
    # The relay publishes the accepted orders' jobs (orders/relay.py): about 1 ms of CPU per order
    # (what publishing cost the web: docs/flash-sale-path.md), so 0.06 vCPU at the lab's 60 orders/s.
    relay_size: tuple[int, int] = (256, 512)
    web_count: int = 2
    relay_count: int = 2  # one per AZ: an AZ's loss leaves a relay running
    relay_threads: int = 2  # RELAY_THREADS: each thread holds one DB connection
    relay_batch_size: int = 50  # RELAY_BATCH_SIZE: orders one pass locks, publishes and stamps
    worker_concurrency: int = 20  # threads per worker task (WORKER_CONCURRENCY)
    min_workers: int = 1
    max_workers: int = 20
    # Orders per second ONE worker thread pays: the lab's measured efficiency / latency (`python -m
    # deploy recommend --report latest`, sizing/recommend.py), else the ideal 1 / latency of sizing.workers.
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
    # The database sits behind RDS Proxy: every process pools its own client connections to the
    # proxy, and the proxy multiplexes their transactions onto the instance's connections (Django
    # keeps a session free of pinning state: no prepared statements, no SET, no advisory locks).
    # m7g.large (2 vCPU, 8 GiB) holds the lab's sale: ~3 ms of PostgreSQL CPU per order is 0.18 of
    # a core at 60 orders/s (`python -m deploy plan`); a t4g's CPU credits run out mid-sale.
    db_instance: str = "m7g.large"
    db_multi_az: bool = True
    db_reserved_connections: int = 10  # the operator's psql, RDS's own sessions, a failover's overlap
    proxy_max_connections_percent: int = 90  # of max_connections, for the proxy's pool
    web_processes: int = 2  # gunicorn processes per web task (WEB_PROCESSES)
    web_threads: int = 32  # threads per web process (WEB_THREADS)
    web_max_count: int = 10  # web tasks the web's CPU scaling may reach
    # A worker thread holds a connection only around its claim and its record, never across the
    # charge: 10 served 200 threads at η 0.93-0.96 in the drain study (docs/exactly-once.md).
    worker_pool_size: int = 10
    redis_node: str = "cache.t4g.micro"  # the rate limits' shared counters (REDIS_URL)

    # --- connections: each process's pool, per consumer mode ------------------------------------
    @property
    def db_max_connections(self) -> int:
        """The instance's max_connections by RDS's default formula (read `SHOW max_connections`)."""
        return db_max_connections(self.db_instance)

    @property
    def proxy_connections(self) -> int:
        """Connections the proxy may open to the instance: its share of max_connections."""
        usable = self.db_max_connections - self.db_reserved_connections
        return min(usable, self.db_max_connections * self.proxy_max_connections_percent // 100)

    def pool_size(self, role: str) -> int:
        """DB_POOL_MAX_SIZE (= DATABASE_CONNECTION_BUDGET) of one process of `role`.

        web: one per thread, so no request waits for a connection; the proxy makes an idle one
        free. worker: its measured pool. lambda: one environment, one invocation at a time.
        relay: one per thread (each keeps its own between passes), and one more, for a thread
        started in place of one that died. sweeper and the one-off tasks (migrate, manage): two.
        """
        sizes = {
            "web": self.web_threads,
            "worker": self.worker_pool_size,
            "lambda": 1,
            "relay": self.relay_threads + 1,
        }
        return sizes.get(role, 2)

    def processes(self, role: str) -> int:
        """The most processes of `role` that may run at once (each with its own pool)."""
        counts = {
            "web": self.web_max_count * self.web_processes,
            "worker": self.max_workers,
            "lambda": self.lambda_max_concurrency,
            "relay": self.relay_count,
            "sweeper": 1,
            "oneoff": 2,  # migrate during a deploy, and a manage task beside it
        }
        return counts[role]

    def roles(self, consumer: str) -> tuple[str, ...]:
        """The roles that hold connections with `consumer` (ecs | lambda) charging: only its own."""
        if consumer not in ("ecs", "lambda"):
            raise ValueError(f"consumer is ecs or lambda, not {consumer!r}")
        return ("web", "worker" if consumer == "ecs" else "lambda", "relay", "sweeper", "oneoff")

    def client_connections(self, consumer: str) -> int:
        """Client connections to the proxy at the most: every process's full pool."""
        return sum(self.processes(r) * self.pool_size(r) for r in self.roles(consumer))

    def busy_connections(self, rate: float, consumer: str = "ecs") -> float:
        """Connections the proxy lends at once at `rate` orders/s: transactions in flight.

        Per order: the accept (one statement, ~2 ms held), the claim and the record (~3 ms each).
        The outbox stamp is no longer one UPDATE per order: it is the relay's transaction, one per
        pass of up to `relay_batch_size` (50) orders, so fewer commits per order. But a pass holds
        its connection through the lock, the SendMessageBatch requests and the stamp, and that time
        is not measured yet; so each relay thread counts as one connection always busy, the most it
        can hold (at a sale's rates it nearly is). Plus the sweeper's and the one-offs' occasional
        reads, one each.
        """
        seconds_held_per_order = 0.002 + 0.003 + 0.003
        relay_threads = self.processes("relay") * self.relay_threads
        return (
            rate * seconds_held_per_order
            + relay_threads
            + self.processes("sweeper")
            + self.processes("oneoff")
        )

    def connection_problems(self, rate: float) -> list[str]:
        """Why this sizing cannot serve `rate` orders/s through the proxy; empty when it can."""
        problems = []
        for consumer in ("ecs", "lambda"):
            busy = self.busy_connections(rate, consumer)
            if busy > self.proxy_connections * 0.5:
                problems.append(
                    f"{consumer}: {busy:.0f} connections busy at {rate:g} orders/s, over half the "
                    f"proxy's {self.proxy_connections} on {self.db_instance}: a larger instance"
                )
        return problems

    @property
    def task_rate(self) -> float:
        """Orders per second one worker task pays: concurrency * the measured per-thread rate."""
        return self.worker_concurrency * self.per_worker_rate

    @property
    def unpublished_alarm_orders(self) -> int:
        """Unpublished orders (enqueued_at null) worth an alarm when they stay: more than every relay
        thread takes in one pass. Below it the relays keep up; above it at every sample for minutes,
        SQS refuses, the relays fall behind, or none runs."""
        return self.relay_count * self.relay_threads * self.relay_batch_size

    @property
    def backlog_target(self) -> int:
        """Messages per worker task that one task drains within the acceptable wait (AWS's recipe)."""
        return max(1, math.floor(round(self.acceptable_wait_seconds * self.task_rate, 6)))


# RDS instance classes the plan may choose: (vCPU, GiB). Graviton, general purpose then memory.
DB_INSTANCES: dict[str, tuple[int, int]] = {
    "t4g.micro": (2, 1),
    "m7g.large": (2, 8),
    "m7g.xlarge": (4, 16),
    "m7g.2xlarge": (8, 32),
    "m7g.4xlarge": (16, 64),
    "m7g.8xlarge": (32, 128),
    "m7g.12xlarge": (48, 192),
    "m7g.16xlarge": (64, 256),
}
GIB = 1024**3


def db_max_connections(instance: str) -> int:
    """RDS PostgreSQL's default: LEAST(DBInstanceClassMemory / 9531392, 5000).

    DBInstanceClassMemory is the class's memory less what the OS and RDS keep (about 0.25 GiB
    on the small classes; an estimate here): t4g.micro ~84, m7g.large ~873.
    """
    _, memory = DB_INSTANCES[instance]
    return min(int((memory * GIB - GIB // 4) // 9531392), 5000)
