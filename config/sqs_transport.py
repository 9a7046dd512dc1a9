"""kombu's SQS transport with one fix and one addition.

The fix: a failed poll must not stop a worker from polling again. When a ReceiveMessage long poll
fails (SQS unreachable, a timeout, a 5xx), kombu hands the poll's callback an empty *list*, and
`_on_messages_ready` then calls `.get()` on it. The error is logged as "Error in timer" and,
because the callback that schedules the next poll never runs, that worker silently stops
consuming for good while it looks healthy (celery/kombu#1127; reproduced here by `make chaos`
broker-outage with kombu 5.7.0). Treat such a poll as an empty one. Remove `Channel` when kombu
fixes it upstream.

The addition: `collect_sends()`. kombu sends one SendMessage per published task; within this
block a thread's publishes are recorded instead (the exact SendMessage arguments kombu built:
body, encoding, delay, attributes) so that the caller can send up to 10 of them in one
SendMessageBatch (orders/sqs_jobs.py). kombu has no batch publish to use instead.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from kombu.transport import SQS

_local = threading.local()


@dataclass(frozen=True)
class Send:
    client: Any  # the boto3 SQS client kombu would have sent with
    arguments: dict[str, Any]  # its SendMessage arguments: QueueUrl, MessageBody, DelaySeconds, ...


@contextmanager
def collect_sends() -> Iterator[list[Send]]:
    """Record, instead of sending, the SQS messages this thread publishes within the block."""
    _local.sends = sends = []
    try:
        yield sends
    finally:
        del _local.sends


class _Recorder:
    def __init__(self, client: Any, sends: list[Send]):
        self._client, self._sends = client, sends

    def send_message(self, **arguments: Any) -> dict:
        self._sends.append(Send(self._client, arguments))
        return {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class Channel(SQS.Channel):
    def _on_messages_ready(self, queue, qname, messages):
        if not isinstance(messages, dict):
            return 0  # the poll failed; the caller schedules the next one
        return super()._on_messages_ready(queue, qname, messages)

    def sqs(self, queue=None):
        client = super().sqs(queue=queue)
        sends = getattr(_local, "sends", None)
        return client if sends is None else _Recorder(client, sends)


class Transport(SQS.Transport):
    Channel = Channel
