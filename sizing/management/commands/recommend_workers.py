"""`manage.py recommend_workers --rate 60`: payment workers for a target order rate (sizing/recommend.py)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sizing.recommend import ResultsError, latest_report, recommend


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
        try:
            path = (
                None
                if not report
                else latest_report(Path(settings.BASE_DIR))
                if report == "latest"
                else Path(report)
            )
            recommendation = recommend(rate, latency, provider_limit, report=path, efficiency=efficiency)
        except (ValueError, ResultsError) as exc:
            raise CommandError(str(exc)) from exc
        style: dict[str, Callable[[str], str]] = {
            "": str,
            "success": self.style.SUCCESS,
            "warning": self.style.WARNING,
        }
        for kind, line in recommendation.lines():
            self.stdout.write(style[kind](line))
