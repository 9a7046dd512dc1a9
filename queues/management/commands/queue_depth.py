from django.core.management.base import BaseCommand

from queues.sqs import payment_queue_depths


class Command(BaseCommand):
    help = "Show how many payment jobs wait in SQS, are being worked on, or are dead-lettered."

    def handle(self, *args, **options):
        main, dlq = payment_queue_depths()
        self.stdout.write(
            f"waiting {main.visible}  in flight {main.in_flight}  delayed {main.delayed}  "
            f"dead-lettered {dlq.visible}"
        )
