"""CloudWatch embedded metric format (EMF): metrics as JSON log lines that CloudWatch Logs turns
into metrics, with no agent (ECS's awslogs driver ships stdout; Lambda's does too).

Aggregated in the process, not a line per event: at 60 orders/s a line per event would be a few
hundred lines a second per task, each billed as log ingestion. Instead counters are summed and
timings collected per dimension set and written every `flush_seconds` (default 10) as one line,
timings as value arrays (at most 100 values per metric and line, the format's limit: more make
more lines). The sweeper's gauges are written once per pass. Lost on a crash: at most one
interval's counts, like any in-process aggregation.

The spec: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
A few dozen lines of our own rather than `aws-embedded-metrics`: that library flushes per
`metric_scope` (a line per decorated call, i.e. per event), is asyncio-based, and probes the
environment at start; aws-lambda-powertools' Metrics is built around a Lambda invocation.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_VALUES = 100  # values of one metric in one EMF line


@dataclass
class _Bucket:
    counts: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    values: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    gauges: dict[str, float] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)


class Emf:
    """Collects metric events and writes them as EMF lines every `flush_seconds` (and at exit)."""

    def __init__(
        self,
        namespace: str,
        *,
        flush_seconds: float = 10,
        write: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.namespace = namespace
        self.flush_seconds = flush_seconds
        self.write = write or _stdout
        self.clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[tuple[str, str], ...], _Bucket] = {}
        self._pid: int | None = None

    def count(self, name: str, value: float = 1, **dimensions: str) -> None:
        with self._lock:
            bucket = self._bucket(dimensions)
            bucket.counts[name] += value
            bucket.units[name] = "Count"

    def observe(self, name: str, value: float, unit: str = "Seconds", **dimensions: str) -> None:
        with self._lock:
            bucket = self._bucket(dimensions)
            bucket.values[name].append(value)
            bucket.units[name] = unit
            full = len(bucket.values[name]) >= MAX_VALUES
        if full:
            self.flush()

    def gauge(self, name: str, value: float, unit: str = "Count", **dimensions: str) -> None:
        with self._lock:
            bucket = self._bucket(dimensions)
            bucket.gauges[name] = value
            bucket.units[name] = unit

    def flush(self) -> None:
        with self._lock:
            buckets, self._buckets = self._buckets, {}
        timestamp = int(self.clock() * 1000)
        for key, bucket in buckets.items():
            for line in lines(self.namespace, dict(key), bucket, timestamp):
                self.write(line)

    def _bucket(self, dimensions: dict[str, str]) -> _Bucket:
        """The bucket for these dimensions; starts the flusher on first use in each process (forks)."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._buckets = {}
            threading.Thread(target=self._flush_forever, name="emf-flush", daemon=True).start()
            atexit.register(self.flush)
        key = tuple(sorted(dimensions.items()))
        if key not in self._buckets:
            self._buckets[key] = _Bucket()
        return self._buckets[key]

    def _flush_forever(self) -> None:
        while True:
            time.sleep(self.flush_seconds)
            self.flush()


def lines(namespace: str, dimensions: dict[str, str], bucket: _Bucket, timestamp: int) -> list[str]:
    """EMF lines for one dimension set: counters and gauges in the first, timings in chunks of 100."""
    chunks = max([1, *((len(v) + MAX_VALUES - 1) // MAX_VALUES for v in bucket.values.values())])
    out = []
    for index in range(chunks):
        values: dict[str, float | list[float]] = {}
        if index == 0:
            values.update(bucket.counts)
            values.update(bucket.gauges)
        for name, samples in bucket.values.items():
            chunk = samples[index * MAX_VALUES : (index + 1) * MAX_VALUES]
            if chunk:
                values[name] = chunk
        if not values:
            continue
        document = {
            "_aws": {
                "Timestamp": timestamp,
                "CloudWatchMetrics": [
                    {
                        "Namespace": namespace,
                        "Dimensions": [sorted(dimensions)],
                        "Metrics": [{"Name": name, "Unit": bucket.units[name]} for name in values],
                    }
                ],
            },
            **dimensions,
            **values,
        }
        out.append(json.dumps(document, separators=(",", ":")))
    return out


_write_lock = threading.Lock()


def _stdout(line: str) -> None:
    # Whole lines, never interleaved with another thread's: CloudWatch parses each log event alone.
    with _write_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
