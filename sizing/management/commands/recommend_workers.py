"""`manage.py recommend_workers --rate 60`: payment workers for a target order rate."""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sizing import results
from sizing.workers import Sizing, ideal_rate


def measured_efficiency(report: Path, near_workers: int) -> results.WorkerRun:
    """The report's no-limit run nearest `near_workers` workers: the drain study's, else a scaling run."""
    try:
        return results.worker_efficiency(results.worker_runs(report), near_workers)
    except results.ResultsError as exc:
        raise CommandError(f"{report}: {exc}") from exc


def latest_report() -> Path:
    """Return the newest report's results.json (timestamped folders sort by time)."""
    reports = sorted(p for p in (Path(settings.BASE_DIR) / "reports").glob("*/results.json"))
    if not reports:
        raise CommandError("no reports/*/results.json yet; run `make experiment` first")
    return reports[-1]


class Command(BaseCommand):
    help = (
        "Recommend how many payment workers keep up with a target order rate: the seed's "
        "rate × latency, the provider-limit caveat, optionally corrected by a report's measured efficiency."
    )

    def add_arguments(self, parser):
        parser.add_argument("--rate", type=float, required=True, help="Orders per second to keep up with.")
        parser.add_argument(
            "--latency",
            type=float,
            default=float(os.environ.get("PAYMENT_LATENCY_SECONDS", 3)),
            help="Seconds per charge at the provider (default: PAYMENT_LATENCY_SECONDS or 3).",
        )
        parser.add_argument(
            "--provider-limit",
            type=int,
            default=int(os.environ.get("PAYMENT_PROVIDER_CONCURRENCY", 1)),
            help="Charges the provider runs at once, 0 = none (default: PAYMENT_PROVIDER_CONCURRENCY or 1).",
        )
        parser.add_argument(
            "--report",
            metavar="PATH",
            help="A report directory or its results.json (or 'latest') to take the measured efficiency from.",
        )
        parser.add_argument("--efficiency", type=float, help="Measured ÷ ideal processing rate, 0 < e ≤ 1.")

    def handle(self, *args, rate, latency, provider_limit, report, efficiency, **options):
        if rate <= 0 or latency <= 0 or provider_limit < 0:
            raise CommandError("--rate and --latency must be positive, --provider-limit 0 or more")
        source = "assumed ideal (efficiency 1.0)"
        if efficiency is None and report:
            path = latest_report() if report == "latest" else Path(report)
            near = Sizing(rate, latency, provider_limit, 1.0).ideal_workers
            run = measured_efficiency(path, near)
            efficiency = run.efficiency
            source = f"measured at {run.layout} ({run.source}) in {path}"
        elif efficiency is not None:
            source = "given"
        efficiency = 1.0 if efficiency is None else efficiency
        if not 0 < efficiency <= 1.5:
            raise CommandError(f"efficiency {efficiency:g} is out of range")
        sizing = Sizing(rate, latency, provider_limit, efficiency)

        write = self.stdout.write
        write(f"Target: {rate:g} orders/s, {latency:g} s per charge.")
        write(f"Seed's formula: workers = rate × latency = {rate:g} × {latency:g} = {sizing.ideal_workers}")
        if efficiency != 1.0:
            write(f"Efficiency {efficiency:.2f} ({source}): {sizing.workers} workers")
        write(self.style.SUCCESS(f"Recommended workers: {sizing.workers}"))
        if sizing.provider_ceiling is not None:
            ceiling = sizing.provider_ceiling
            line = (
                f"Caveat: the provider runs {provider_limit} charge(s) at once, so it pays at most "
                f"{ceiling:.2f} orders/s whatever the worker count"
            )
            if sizing.reachable:
                write(line + f"; {rate:g}/s is within it.")
            else:
                useful = provider_limit
                write(
                    self.style.WARNING(
                        line + f"; {rate:g}/s is out of reach. Beyond {useful} worker(s) "
                        f"(ideal {ideal_rate(useful, latency=latency, provider_limit=provider_limit):.2f}/s) "
                        "more workers only wait longer. Raise the provider's limit or accept a queue."
                    )
                )
