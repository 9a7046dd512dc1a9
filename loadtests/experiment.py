"""Re-create the seed report's measurements on a stack of our own: `python -m loadtests.experiment`.

Starts moto, the payment sandbox, gunicorn and (per run) a celery worker on loopback through
`devstack.stack.Stack`, drives them with Locust, samples SQS every second, reads the orders back
from the database and writes `reports/<timestamp>/` (report.md, data/*.csv|json, *.png).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from devstack.stack import BASE_DIR

# Defaults: (full run, --quick). Full ≈ 25 min on 2 cores, quick ≈ 4.5 min.
PRESETS: dict[str, tuple] = {
    "users": (20, 20),
    "duration": (60.0, 10.0),
    "latency": (3.0, 1.0),
    "workers": ([1, 5, 20, 100], [1, 5, 20, 100]),
    "provider_limits": ([1, 0], [1, 0]),
    "drain_cap": (60.0, 6.0),
    "capacity_rates": ([5, 10, 20, 40, 60, 80, 120, 160], [5, 10, 20, 40, 80]),
    "capacity_seconds": (15.0, 5.0),
    "ceiling_seconds": (8.0, 3.0),
}


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _floats(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.experiment",
        description=(
            "Run the flash-sale load study (sync vs async, worker scaling at both provider limits, "
            "capacity, worker memory, sizing) on a stack this command starts and stops, and write "
            "reports/<timestamp>/report.md with raw CSV/JSON data and PNG charts."
        ),
        epilog="Defaults shown as full / --quick. Example: make experiment ARGS='--quick --workers 1,20'",
    )
    add = parser.add_argument
    add(
        "--quick",
        action="store_true",
        help="Shorter loads and a 1 s provider latency: done in about 5 minutes.",
    )
    add("--users", type=int, help="Locust users per load run (20 / 20, the seed's).")
    add("--duration", type=float, help="Seconds of load per run (60 / 10, the seed's 60).")
    add("--user-rate", type=float, default=3.0, help="Checkouts/s each user aims for (3: 20 users ≈ 60/s).")
    add("--latency", type=float, help="Seconds per charge at the payment sandbox (3 / 1).")
    add("--workers", type=_ints, help="Worker concurrencies to compare, comma-separated (1,5,20,100).")
    add(
        "--provider-limits",
        type=_ints,
        help="Provider concurrency limits to run the scaling at; 0 = none (1,0).",
    )
    add("--drain-cap", type=float, help="Watch the queue drain at most this long after the load (60 / 6 s).")
    add("--async-workers", type=int, default=20, help="Worker count of the async run set beside sync (20).")
    add("--capacity-rates", type=_floats, help="Target accept rates (orders/s) for the capacity steps.")
    add("--capacity-seconds", type=float, help="Seconds per capacity step (15 / 5).")
    add("--ceiling-seconds", type=float, help="Seconds to measure the SQS emulator's send ceiling (8 / 3).")
    add("--ceiling-threads", type=int, default=8, help="boto3 threads sending to the emulator (8).")
    add(
        "--prefork",
        type=int,
        default=20,
        help="Pool size for the prefork vs threads memory runs; 0 skips (20).",
    )
    add("--out", type=Path, default=BASE_DIR / "reports", help="Where the timestamped report folder goes.")
    add(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="Database to use (migrated, catalogue seeded). Default: a fresh SQLite file in the report.",
    )
    return parser


def resolve(args: argparse.Namespace) -> argparse.Namespace:
    """Fill unset options from the full or quick preset."""
    column = 1 if args.quick else 0
    for name, values in PRESETS.items():
        if getattr(args, name) is None:
            setattr(args, name, values[column])
    if any(n < 1 for n in args.workers) or args.users < 1 or args.duration <= 0 or args.latency <= 0:
        raise SystemExit("workers and users must be ≥ 1, duration and latency > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = resolve(build_parser().parse_args(argv))
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    report_dir = args.out / stamp
    for suffix in range(1, 100):  # two runs in one second get two folders
        if not report_dir.exists():
            break
        report_dir = args.out / f"{stamp}-{suffix}"
    report_dir.mkdir(parents=True)
    database_url = args.database_url or f"sqlite:///{report_dir / 'shop.sqlite3'}"
    # The runner reads orders with the ORM; it and every child process use this database.
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.local"
    os.environ["DATABASE_URL"] = database_url

    import django

    django.setup()
    logging.getLogger().setLevel(logging.WARNING)  # the live line is the runner's output; logs go to logs/
    from loadtests.study import Study

    study = Study(args, report_dir, database_url)
    try:
        study.run()
    except KeyboardInterrupt:
        print("\ninterrupted; stopping the stack", file=sys.stderr)
        return 130
    finally:
        study.close()
    print(f"\nReport: {report_dir / 'report.md'}  ({time.monotonic() - study.began:.0f} s)")
    print(json.dumps({"report": str(report_dir / "report.md")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
