import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from orders.reconciliation import Discrepancy, LedgerUnavailable, reconcile

UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_AGO = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
UNREPAIRED, UNANSWERED = 1, 2  # exit statuses


def moment(value: str) -> datetime:
    """`24h`, `90m`, `30s`, `7d` (that long ago) or an ISO 8601 date/time (UTC unless it says)."""
    if match := _AGO.match(value.strip()):
        return timezone.now() - timedelta(**{UNITS[match.group(2)]: float(match.group(1))})
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise CommandError(f"{value!r} is neither a duration (24h, 90m) nor an ISO date/time") from exc
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)


def describe(found: Discrepancy) -> str:
    state = "repaired" if found.repaired else "NOT repaired"
    charges = ",".join(found.charge_ids) or "-"
    return f"{found.kind} order={found.order_id or '-'} charges={charges} {state}: {found.detail}"


class Command(BaseCommand):
    help = (
        "Compare the payment provider's books with our orders over a window and list what disagrees; "
        "with --repair, record the charges no attempt recorded (those orders become paid). Refunds "
        f"are a person's: nothing else is changed. Exit status {UNREPAIRED} if a discrepancy is left "
        f"unrepaired, {UNANSWERED} if the provider's books did not answer, else 0."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since",
            type=moment,
            default="24h",
            metavar="24h|90m|ISO",
            help="start of the window: that long ago, or a date/time (default 24h)",
        )
        parser.add_argument("--until", type=moment, metavar="ISO", help="end of the window (default now)")
        parser.add_argument("--repair", action="store_true", help="pay the orders the books show charged")
        parser.add_argument(
            "--json",
            dest="json_path",
            type=Path,
            metavar="PATH",
            help="also write the result to PATH as JSON",
        )

    def handle(
        self, *args, since: datetime, until: datetime | None, repair: bool, json_path: Path | None, **_
    ):
        try:
            result = reconcile(since=since, until=until, repair=repair)
        except LedgerUnavailable as exc:
            raise CommandError(f"{exc}; nothing was reconciled or changed", returncode=UNANSWERED) from exc
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        since, until = result.since.astimezone(UTC), result.until.astimezone(UTC)
        window = f"{since:%Y-%m-%d %H:%M:%S} – {until:%Y-%m-%d %H:%M:%S} UTC"
        summary = f"{window}: {result.line()}"
        self.stdout.write(self.style.WARNING(summary) if result.unrepaired else self.style.SUCCESS(summary))
        for found in result.discrepancies:
            self.stdout.write(describe(found))
        if json_path is not None:
            json_path.write_text(json.dumps(result.as_json(), indent=2) + "\n")
        if result.unrepaired:
            raise CommandError(
                f"{len(result.unrepaired)} discrepancies left for a person", returncode=UNREPAIRED
            )
