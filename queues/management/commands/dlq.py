from django.conf import settings
from django.core.management.base import BaseCommand

from queues.sqs import peek, queue_depth, redrive


class Command(BaseCommand):
    help = (
        "Show the payment dead-letter queue: its depth and, with --show, its messages. "
        "--redrive moves them back to the payment queue once the cause is fixed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--show", type=int, default=0, metavar="N", help="describe up to N messages")
        parser.add_argument(
            "--redrive",
            dest="move_back",
            action="store_true",
            help="move every message back to the payment queue",
        )

    def handle(self, *args, show, move_back, **options):
        depth = queue_depth(settings.SQS_DLQ_URL)
        self.stdout.write(f"dead-letter queue: {depth.visible} waiting, {depth.in_flight} in flight")
        for line in peek(settings.SQS_DLQ_URL, show) if show else []:
            self.stdout.write(f"  {line}")
        if move_back:
            moved = redrive(settings.SQS_DLQ_URL, settings.SQS_QUEUE_URL)
            self.stdout.write(self.style.SUCCESS(f"moved {moved} messages back to the payment queue"))
