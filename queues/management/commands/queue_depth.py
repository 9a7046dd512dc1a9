from django.conf import settings
from django.core.management.base import BaseCommand

from queues.sqs import queue_depth


class Command(BaseCommand):
    help = "Show how many payment jobs wait in SQS, are being worked on, or are dead-lettered."

    def handle(self, *args, **options):
        main = queue_depth(settings.SQS_QUEUE_URL)
        dlq = queue_depth(settings.SQS_DLQ_URL)
        self.stdout.write(
            f"waiting {main.visible}  in flight {main.in_flight}  delayed {main.delayed}  "
            f"dead-lettered {dlq.visible}"
        )
