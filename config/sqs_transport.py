"""kombu's SQS transport with one fix: a failed poll must not stop a worker from polling again.

When a ReceiveMessage long poll fails (SQS unreachable, a timeout, a 5xx), kombu hands the
poll's callback an empty *list*, and `_on_messages_ready` then calls `.get()` on it. The error
is logged as "Error in timer" and, because the callback that schedules the next poll never
runs, that worker silently stops consuming for good while it looks healthy (celery/kombu#1127;
reproduced here by `make chaos` broker-outage with kombu 5.7.0). Treat such a poll as an empty
one. Remove this module when kombu fixes it upstream.
"""

from kombu.transport import SQS


class Channel(SQS.Channel):
    def _on_messages_ready(self, queue, qname, messages):
        if not isinstance(messages, dict):
            return 0  # the poll failed; the caller schedules the next one
        return super()._on_messages_ready(queue, qname, messages)


class Transport(SQS.Transport):
    Channel = Channel
