import dataclasses
import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections

from observability import heartbeat, metrics
from orders import notifications
from orders.monitoring import sample_backlog
from orders.recovery import sweep_stuck_orders

log = logging.getLogger("orders.sweeper")


class Command(BaseCommand):
    help = (
        "Publish payment jobs for stuck orders: never taken by SQS (refused, or held by a web "
        "process that died), lost by SQS, or held by a dead worker. "
        "Once by default; with --every N, as a long-running sweeper process."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--every", type=float, nargs="?", const=settings.SWEEP_INTERVAL_SECONDS, metavar="SECONDS",
            help=f"Sweep every SECONDS until stopped (default {settings.SWEEP_INTERVAL_SECONDS:g}).",
        )  # fmt: skip

    def handle(self, *args, every, **options):
        if every is None:
            self.stdout.write(self.describe(sweep_stuck_orders()))
            return
        metrics.serve(settings.SWEEPER_METRICS_PORT, settings.METRICS_ADDR)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        # A long-running process: its news are log lines (JSON in production), not command output.
        log.info("sweeper: every %gs", every)
        while not stop.is_set():
            try:
                result = sweep_stuck_orders()
            except DatabaseError:
                log.exception("sweep failed; trying again in %ss", every)
            else:
                if result.released or result.published or result.unpublished or result.keys_purged:
                    log.info(self.describe(result), extra=dataclasses.asdict(result))
            try:
                notifications.send_pending()  # the customers' emails: off the workers' charging threads
            except DatabaseError:
                log.exception("could not read the orders to mail; trying again in %ss", every)
            finally:
                sample_backlog()  # the gauges, once per pass, whatever the sweep did
                close_old_connections()
                heartbeat.beat("sweeper")  # alive, even while the database is down
            stop.wait(every)

    @staticmethod
    def describe(result) -> str:
        return (
            f"sweep: released {result.released} expired leases, published {result.published} jobs, "
            f"{result.unpublished} could not be published, purged {result.keys_purged} idempotency keys"
        )
