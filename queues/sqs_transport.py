"""kombu's SQS transport with three fixes and three additions.

Fix 1: a failed poll must not stop a worker from polling again. When a ReceiveMessage long poll
fails (SQS unreachable, a timeout, a 5xx), kombu hands the poll's callback an empty *list*, and
`_on_messages_ready` then calls `.get()` on it. The error is logged as "Error in timer" and,
because the callback that schedules the next poll never runs, that worker silently stops
consuming for good while it looks healthy (celery/kombu#1127; reproduced here by `make chaos`
broker-outage with kombu 5.7.0). Treat such a poll as an empty one. Remove `Channel` when kombu
fixes it upstream.

Fixes 2 and 3: a worker must not wait a second between receives. A fresh worker of 200 threads over
a queued backlog took its jobs in bursts of ~50 once a second (its log: every burst started on the
same millisecond of the second), so it needed ~4 s to fill its slots, and every refill waited too.
Two kombu 5.7.0 timer bugs add up to that second, each enough on its own:
- Fix 2: libcurl's timer callback gives milliseconds and means "replace the one timer"; kombu's
  `CurlClient._set_timeout` hands the milliseconds to a hub that counts seconds and adds a timer on
  every call, so receives progress on its 1 s `_timeout_check` tick. `_set_timeout` below keeps one
  timer, in seconds.
- Fix 3: the hub runs at most 10 due timers per pass, then sleeps `min_delay` (1 s) even when more are
  due; and a `call_soon` made from inside a timer (curl completes most receives there) waits for the
  hub's next wake-up. `fire_timers` below returns 0 while a timer is due, and a poll that fetched
  messages schedules the next as a due timer (`Channel._loop1`).
`queues/tests/test_event_loop.py` pins both bugs in kombu's own code, so that the test that checks a
bug is still there fails when an upgrade fixes it: then delete the patch. Upstream reports to file:
celery/kombu (curl timer units; fire_timers' one-second sleep with timers still due).

Addition 1, `collect_sends()`. kombu sends one SendMessage per published task; within this
block a thread's publishes are recorded instead (the exact SendMessage arguments kombu built:
body, encoding, delay, attributes) so that the caller can send up to 10 of them in one
SendMessageBatch (orders/sqs_jobs.py). kombu has no batch publish to use instead.

Addition 2, batched acks. kombu acks each message with its own DeleteMessage, a boto3 call per
task (a few ms of CPU each) in a worker that has one GIL for 200 threads, and one billed request per order.
Acks are collected here and deleted 10 at a time (DeleteMessageBatch) by a flusher thread, at the
latest `ACK_FLUSH_SECONDS` after the ack and at once when the channel closes. The prefetch slot is
released at ack time, as kombu does. An ack lost in a crash only means the job comes back after the
visibility timeout, and the charge workflow turns a finished order away (charge once holds).

Addition 3, parallel receives. kombu keeps one ReceiveMessage in flight per queue, and SQS returns
at most 10 messages per call, so a worker of 200 threads whose charges end together refills its
slots 10 at a time, one round trip after another (measured: ~0.3 s per wave at N = 100, 3-6 % of
throughput). With free slots for more than 10 messages this channel keeps up to `receive_polls`
(transport option, default 4) receives in flight, each asking for no more than the slots not
already asked for, so nothing is fetched that the worker cannot start.

Addition 4, the worker's heartbeat (observability/heartbeat.py) beats from the poll loop itself: each turn
of `_schedule_queue` (a poll completed, or the pool is full and the loop looks again after
`polling_interval`) touches the file, at most once a second. A timer on the worker's event loop
kept beating while the poll chain was dead (the kombu#1127 failure mode: the process lives, the
loop runs, nothing polls), so only a beat from the chain proves that the consumer still consumes.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from kombu.asynchronous.http.curl import CurlClient
from kombu.asynchronous.hub import Hub
from kombu.transport import SQS, virtual

from observability import heartbeat

log = logging.getLogger(__name__)
_local = threading.local()

ACK_BATCH = 10  # DeleteMessageBatch takes at most 10 entries
# A partial batch waits at most this long. A twentieth of a second flushed about one handle per
# call at a process's rate of charges, one boto3 call per ack again (docs/performance.md); a second
# lets batches fill. The cost is only that a finished job stays in flight up to a second longer.
ACK_FLUSH_SECONDS = 1.0
BEAT_AT_MOST_EVERY_SECONDS = 1.0  # the poll loop turns up to 100 times a second while the pool is full


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
    _polls: dict[str, int] | None = None  # receives in flight per queue (touched by the hub thread only)

    def _schedule_queue(self, queue):
        """kombu's poll loop, with up to `receive_polls` receives in flight instead of one.

        Every receive asks for at most the free slots not already asked for. Each poll's completion
        (`_poll_done`) comes back here; a call that starts nothing while others are in flight ends
        its chain, so the number of chains stays bounded by the polls allowed.
        """
        if queue not in self._active_queues:
            return
        self._beat()
        polls = self._polls = self._polls if self._polls is not None else {}
        in_flight = polls.get(queue, 0)
        if not self.qos.can_consume():
            if not in_flight:
                self._loop1(queue)  # nothing will call back: look again after polling_interval
            return
        estimate = self.qos.can_consume_max_estimate()
        free = SQS.SQS_MAX_MESSAGES if estimate is None else estimate
        wanted = min(max(1, int(self.transport_options.get("receive_polls", 4))), math.ceil(free / 10))
        while in_flight < wanted and (count := min(SQS.SQS_MAX_MESSAGES, free - 10 * in_flight)) > 0:
            in_flight = polls[queue] = in_flight + 1
            self._get_async(queue, count, callback=SQS.promise(self._poll_done, (queue,)))

    def _loop1(self, queue, messages_fetched=None):
        """After a fetch, poll again at once: as a due timer, which the hub runs before it sleeps.

        kombu's `hub.call_soon` from inside a timer (curl completes most receives in its timer
        callback) waits for the hub's next wake-up, up to a second (see the module's "Fix 3").
        """
        if messages_fetched and self.hub is not None:
            self.hub.call_later(0, self._schedule_queue, queue)
        else:
            super()._loop1(queue, messages_fetched)

    _last_beat = 0.0  # the hub thread's alone

    @classmethod
    def _beat(cls) -> None:
        """The consumer's poll loop turned: beat (observability/heartbeat.py), at most once a second."""
        now = time.monotonic()
        if now - cls._last_beat >= BEAT_AT_MOST_EVERY_SECONDS:
            cls._last_beat = now
            try:
                heartbeat.beat("worker")
            except OSError as exc:  # a full or read-only disk must not stop consuming
                log.warning("could not beat: %r", exc)

    def _poll_done(self, queue, messages_fetched=None):
        if self._polls and self._polls.get(queue):
            self._polls[queue] -= 1
        self._loop1(queue, messages_fetched)

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


def _set_timeout(self: CurlClient, msecs: int) -> None:
    """libcurl's one multi timer, as libcurl means it: in milliseconds, each call replacing the last.

    kombu 5.7 passes the milliseconds to a hub that counts seconds and adds a new timer on every
    call (see the module's "Fix 2").
    """
    previous = getattr(self, "_curl_timer", None)
    if previous is not None:
        previous.cancel()
    self._curl_timer = (  # type: ignore[attr-defined]  # our attribute on kombu's class
        None if msecs < 0 else self.hub.call_later(msecs / 1000, self._timeout_check)
    )


_kombu_set_timeout = CurlClient._set_timeout
CurlClient._set_timeout = _set_timeout  # type: ignore[method-assign]  # the patch itself

_fire_timers = Hub.fire_timers


def _fire_timers_and_say_if_more_are_due(self: Hub, *args: Any, **kwargs: Any) -> float:
    """kombu's `fire_timers`, but 0 s to the next poll while timers are still due.

    kombu runs at most 10 due timers per pass and then, with some still due, lets the hub sleep a
    second (see the module's "Fix 3").
    """
    delay = _fire_timers(self, *args, **kwargs)
    queue = self.timer._queue
    return 0 if queue and queue[0][0] <= time.monotonic() else delay


Hub.fire_timers = _fire_timers_and_say_if_more_are_due  # type: ignore[method-assign]  # the patch itself


class Transport(SQS.Transport):
    Channel = Channel
