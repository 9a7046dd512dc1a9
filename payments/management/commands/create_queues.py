from django.core.management.base import BaseCommand

from payments.queues import ensure_queues


class Command(BaseCommand):
    help = "Create the payment SQS queue and its dead-letter queue (redrive policy). Idempotent."

    def handle(self, *args, **options):
        urls = ensure_queues()
        self.stdout.write(self.style.SUCCESS(f"queue: {urls['queue']}\ndlq:   {urls['dlq']}"))
