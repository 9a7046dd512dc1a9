"""kombu's SQS transport with one fix and one addition.

The fix: a failed poll must not stop a worker from polling again. When a ReceiveMessage long poll
fails (SQS unreachable, a timeout, a 5xx), kombu hands the poll's callback an empty *list*, and
`_on_messages_ready` then calls `.get()` on it. The error is logged as "Error in timer" and,
because the callback that schedules the next poll never runs, that worker silently stops
consuming for good while it looks healthy (celery/kombu#1127; reproduced here by `make chaos`
broker-outage with kombu 5.7.0). Treat such a poll as an empty one. Remove `Channel` when kombu
fixes it upstream.

Addition 1, `collect_sends()`. kombu sends one SendMessage per published task; within this
block a thread's publishes are recorded instead (the exact SendMessage arguments kombu built:
body, encoding, delay, attributes) so that the caller can send up to 10 of them in one
SendMessageBatch (orders/sqs_jobs.py). kombu has no batch publish to use instead.

Addition 2, batched acks. kombu acks each message with its own DeleteMessage, a boto3 call of ~2 ms
of CPU per task in a worker that has one GIL for 200 threads, and one billed request per order.
Acks are collected here and deleted 10 at a time (DeleteMessageBatch) by a flusher thread, at the
latest `ACK_FLUSH_SECONDS` after the ack and at once when the channel closes. The prefetch slot is
released at ack time, as kombu does. An ack lost in a crash only means the job comes back after the
visibility timeout, and the charge workflow turns a finished order away (charge once holds).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from kombu.transport import SQS, virtual

log = logging.getLogger(__name__)
_local = threading.local()

ACK_BATCH = 10  # DeleteMessageBatch takes at most 10 entries
ACK_FLUSH_SECONDS = 0.05


@dataclass(frozen=True)
class Send:
    client: Any  # the boto3 SQS client kombu would have sent with
    arguments: dict[str, Any]  # its SendMessage arguments: QueueUrl, MessageBody, DelaySeconds, ...


@contextmanager
def collect_sends() -> Iterator[list[Send]]:
    """Record, instead of sending, the SQS messages this thread publishes within the block."""
    sends: list[Send] = []
    _local.sends = sends
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


class AckBatcher:
    """Receipt handles waiting to be deleted, per queue; a daemon thread deletes them in batches."""

    def __init__(self, client_for_queue):
        self.client_for_queue = client_for_queue  # queue name -> boto3 client
        self.pending: dict[tuple[str | None, str], list[str]] = defaultdict(list)
        self.cond = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._run, name="sqs-acks", daemon=True)
        self.thread.start()

    def add(self, queue: str | None, queue_url: str, receipt_handle: str) -> None:
        with self.cond:
            self.pending[(queue, queue_url)].append(receipt_handle)
            if len(self.pending[(queue, queue_url)]) >= ACK_BATCH:
                self.cond.notify()

    def close(self) -> None:
        """Delete everything still pending, then stop the thread."""
        with self.cond:
            self.closed = True
            self.cond.notify()
        self.thread.join(10)

    def _run(self) -> None:
        while True:
            with self.cond:
                if not self.closed:
                    self.cond.wait(ACK_FLUSH_SECONDS)
                batches = {key: handles for key, handles in self.pending.items() if handles}
                self.pending.clear()
                closed = self.closed
            for (queue, url), handles in batches.items():
                for start in range(0, len(handles), ACK_BATCH):
                    self._delete(queue, url, handles[start : start + ACK_BATCH])
            if closed:
                return

    def _delete(self, queue: str | None, url: str, handles: list[str]) -> None:
        entries = [{"Id": str(i), "ReceiptHandle": handle} for i, handle in enumerate(handles)]
        for attempt in range(3):
            try:
                failed = self.client_for_queue(queue).delete_message_batch(QueueUrl=url, Entries=entries)
            except Exception as exc:  # the jobs come back after the visibility timeout; harmless
                log.warning(
                    "could not delete %d acked message(s) (%r), try %d", len(handles), exc, attempt + 1
                )
                time.sleep(0.2 * (attempt + 1))
                continue
            if failed.get("Failed"):
                log.warning(
                    "SQS did not delete %d acked message(s): %s", len(failed["Failed"]), failed["Failed"]
                )
            return


class Channel(SQS.Channel):
    _acks: AckBatcher | None = None
    _acks_lock = threading.Lock()

    def basic_ack(self, delivery_tag, multiple=False):
        try:
            info = self.qos.get(delivery_tag).delivery_info
            receipt_handle = info["sqs_message"]["ReceiptHandle"]
        except KeyError:
            return super().basic_ack(delivery_tag, multiple)
        queue = self.canonical_queue_name(info["routing_key"]) if "routing_key" in info else None
        self._ack_batcher().add(queue, info["sqs_queue"], receipt_handle)
        # Release the prefetch slot now, as kombu's own ack does after its DeleteMessage.
        virtual.Channel.basic_ack(self, delivery_tag)

    def _ack_batcher(self) -> AckBatcher:
        with self._acks_lock:
            if self._acks is None:
                self._acks = AckBatcher(lambda queue: self.sqs(queue=queue))
            return self._acks

    def close(self):
        if self._acks is not None:
            self._acks.close()
        super().close()

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
