"""The worker's consumer: a message it cannot run is logged with its SQS id and left for the DLQ.

Celery's consumer (celery 5.7, `celery.worker.consumer.Consumer`) meets four kinds of message it
cannot run, and no retry on this worker will change that:
- `on_decode_error`: the body does not decode (a task whose body is not JSON; a message with
  headers but no task and an unreadable body). Celery logs it and **acks** it: the message is
  deleted and the DLQ never sees it. Reproduced with kombu's envelope around `{not json`.
- `on_unknown_message` (no Celery headers: anything sent to the queue by hand, `{"hello": ...}`,
  binary), `on_unknown_task` (a task name this worker does not register) and `on_invalid_task` (a
  malformed task message, a content type we do not accept): Celery rejects without requeue, which
  kombu 5.7's SQS transport leaves in flight when the queue has a redrive policy (and deletes
  otherwise), while its log says "deleted" or "discarded", the SQS id only deep in a dump.
- And a message that names a registered task but has no `id` header raised KeyError out of the
  consumer: "Unrecoverable error", and the worker stopped. It is an invalid task here.

Every one of them is now logged once per receive at ERROR, as one line with the SQS message id, its
receive count, why, and the start of its body, then rejected without requeue: SQS hands it out
again after the visibility timeout and moves it to the dead-letter queue after
SQS_MAX_RECEIVE_COUNT receives. Why the redrive policy rather than sending it to the DLQ ourselves:
- SQS keeps the message as it was (id, body, attributes, receive count), and the operator's redrive
  (StartMessageMoveTask, `manage.py dlq`) sends it back to its source queue; a copy we sent would
  be a new message whose source SQS does not know.
- A message one worker cannot run another may: during a rolling deploy, a task new to the code
  reaches old workers too. Five receives, a visibility timeout apart, let a new worker take it.
- It is what the Lambda consumer does (a batch item failure): one path to the DLQ for both.
Not requeue=True: kombu's SQS transport then shows the message again after one poll wait (5 s), so
a task new to the code would be dead-lettered within seconds, and a queue without a DLQ would hand
it out for ever. The cost of the choice: a poison message spends SQS_MAX_RECEIVE_COUNT visibility
timeouts (5 x 210 s) in flight before it reaches the DLQ, holding no worker slot meanwhile.

Configured as the app's `worker_consumer` in config/celery_app.py; tests/test_worker_consumer.py
sends each kind to the local SQS server. Delete `on_decode_error` when Celery stops acking what it
cannot decode, and the `id` check when Celery refuses such a message itself.
"""

from __future__ import annotations

import logging

from celery import signals
from celery.exceptions import InvalidTaskError
from celery.worker.consumer import Consumer as CeleryConsumer
from kombu.message import Message
from kombu.utils.encoding import safe_repr

log = logging.getLogger(__name__)

BODY_EXCERPT_CHARS = 120


class Consumer(CeleryConsumer):
    """Celery's consumer, leaving every message it cannot run to SQS's redrive policy, logged."""

    def on_decode_error(self, message, exc) -> None:
        self._leave_for_dead_letters(message, f"cannot decode it: {exc!r}")

    def on_unknown_message(self, body, message) -> None:
        self._leave_for_dead_letters(message, "not a Celery task message")
        signals.task_rejected.send(sender=self, message=message, exc=None)

    def on_unknown_task(self, body, message, exc) -> None:
        headers = message.headers or {}
        self._leave_for_dead_letters(message, f"no such task here: {headers.get('task')!r}")
        signals.task_unknown.send(
            sender=self, message=message, exc=exc, name=headers.get("task"), id=headers.get("id")
        )

    def on_invalid_task(self, body, message, exc) -> None:
        self._leave_for_dead_letters(message, f"invalid task message: {exc}")
        signals.task_rejected.send(sender=self, message=message, exc=exc)

    def create_task_handler(self, *args, **kwargs):
        """Celery's handler, after refusing a task message without an `id` (Celery's raises KeyError)."""
        handle = super().create_task_handler(*args, **kwargs)

        def on_task_received(message):
            headers = message.headers
            if isinstance(headers, dict) and "task" in headers and "id" not in headers:
                return self.on_invalid_task(None, message, InvalidTaskError("no 'id' header"))
            return handle(message)

        return on_task_received

    def _leave_for_dead_letters(self, message, why: str) -> None:
        if not isinstance(message, Message):  # kombu could not even build the message: nothing to reject
            log.error("poison message, not rejectable (%s): %s", why, safe_repr(message)[:BODY_EXCERPT_CHARS])
            return
        sqs = (message.delivery_info or {}).get("sqs_message") or {}
        message_id = sqs.get("MessageId")
        receive_count = (sqs.get("Attributes") or {}).get("ApproximateReceiveCount")
        log.error(
            "poison message %s (receive %s) left for the dead-letter queue: %s",
            message_id,
            receive_count,
            why,
            extra={
                "sqs_message_id": message_id,
                "receive_count": int(receive_count) if receive_count else None,
                "body": safe_repr(message.body)[:BODY_EXCERPT_CHARS],
            },
        )
        message.reject_log_error(log, self.connection_errors, requeue=False)
