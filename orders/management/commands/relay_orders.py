import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from observability import metrics
from orders import relay

log = logging.getLogger("orders.relay")


class Command(BaseCommand):
    help = (
        "Publish the payment jobs of accepted orders from the orders table (the outbox's relay). "
        "Runs until stopped; with --once, publishes what is waiting now and exits."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Publish what waits now, then exit.")

    def handle(self, *args, once, **options):
        if once:
            self.stdout.write(f"relay: published the jobs of {relay.relay_until_empty()} orders")
            return
        metrics.serve(settings.RELAY_METRICS_PORT, settings.METRICS_ADDR)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        log.info(
            "relay: %d threads, batches of %d, every %gs when idle",
            settings.RELAY_THREADS,
            settings.RELAY_BATCH_SIZE,
            settings.RELAY_INTERVAL_SECONDS,
        )
        relay.run(stop)
