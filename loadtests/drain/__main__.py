"""`python -m loadtests.drain`: run the drain study on a stack of its own and print a line per run."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from core.timeouts import Timeouts
from devstack.stack import BASE_DIR

from ..bench import POLL_SECONDS, Bench, fresh_database

USAGE = """
    python -m loadtests.drain                          # N = 1, 5, 20, 100, 200; no limit; 3 s payments
    python -m loadtests.drain --workers 100,200 --provider-limits 1,0 --latency 1 --waves 5
    python -m loadtests.drain --workers 200 --processes 2 --waves 20   # N = 200 as 2 workers × 100 threads
"""


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.drain",
        description="The drain study: K orders queued first, then one worker of N threads.",
        epilog=USAGE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--workers", type=_ints, default=[1, 5, 20, 100, 200], help="N, comma-separated")
    parser.add_argument("--provider-limits", type=_ints, default=[0], help="0 = none (default 0)")
    parser.add_argument("--latency", type=float, default=3.0, help="seconds per charge (3)")
    parser.add_argument("--waves", type=int, default=8, help="orders queued = N × waves (8)")
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="worker processes the N threads are split over, N / processes each (1)",
    )
    parser.add_argument("--out", type=Path, default=BASE_DIR / "reports", help="where drain-<ts>/ goes")
    args = parser.parse_args(argv)

    run_dir = args.out / f"drain-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    run_dir.mkdir(parents=True, exist_ok=True)
    database = fresh_database("flashsale_drain")
    timeout = math.ceil(max(args.workers) * args.latency * 1.2 + 30)  # a limit-1 provider queues charges
    # The provider's own timeout as long as the workers' wait (its queue must not time charges out).
    timeouts = Timeouts.derive(payment=timeout, provider=timeout)
    env = {**timeouts.as_env(), "SQS_WAIT_TIME_SECONDS": str(POLL_SECONDS)}
    bench = Bench.start(run_dir, database=database, env=env, PAYMENT_LATENCY_SECONDS=str(args.latency))
    # The study reads orders through Django, so it loads once the bench has set Django up.
    from .study import run

    print(f"drain: {database.description}, {os.cpu_count()} CPUs, logs in {run_dir / 'logs'}", flush=True)
    runs = []
    try:
        for limit in args.provider_limits:
            for workers in args.workers:
                result = run(
                    bench, workers=workers, limit=limit, latency=args.latency, waves=args.waves,
                    processes=args.processes,
                )  # fmt: skip
                runs.append(result)
                print(result.line, flush=True)
    finally:
        bench.stop()
    (run_dir / "drain.json").write_text(
        json.dumps({"database": database.description, "runs": [asdict(r) for r in runs]}, indent=2)
    )
    broken = [r for r in runs if r.charged_twice or r.not_charged or r.task_errors]
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
