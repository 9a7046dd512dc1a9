import time

from botocore.exceptions import BotoCoreError, ClientError
from django.core.management.base import BaseCommand, CommandError

from queues.sqs import ensure_queues


class Command(BaseCommand):
    help = "Create the payment SQS queue and its dead-letter queue (redrive policy). Idempotent."

    def add_arguments(self, parser):
        parser.add_argument(
            "--wait", type=float, default=0, metavar="SECONDS",
            help="Keep trying this long while the SQS endpoint is not up yet (for start-up scripts).",
        )  # fmt: skip

    def handle(self, *args, wait, **options):
        deadline = time.monotonic() + wait
        while True:
            try:
                urls = ensure_queues()
                break
            except (BotoCoreError, ClientError) as exc:
                if time.monotonic() >= deadline:
                    raise CommandError(f"could not create the queues: {exc}") from exc
                time.sleep(0.5)
        self.stdout.write(self.style.SUCCESS(f"queue: {urls['queue']}\ndlq:   {urls['dlq']}"))
