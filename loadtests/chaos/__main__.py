"""Fault injection: the shop's promises (lose no accepted order, charge none twice) under stress.

``make chaos`` (``python -m loadtests.chaos``) starts its own stack — the SQS emulator, the payment
sandbox, gunicorn, celery workers and the sweeper — on a fresh PostgreSQL database
(loadtests/bench.py), runs the fourteen scenarios and prints one line of
figures each, and after each the reconciliation of the provider's books with the orders of its
window (the witness: failed-but-charged, paid-but-not-charged, charged-but-not-paid, charged twice).
Figures come from the database and the sandbox's ledger, never from the shop's own counters.
``make test`` runs small versions of the same scenarios (loadtests/tests/test_chaos.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from devstack.stack import BASE_DIR

from ..bench import Bench, fresh_database
from . import FAST_RECOVERY_ENV, SCENARIO_NAMES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run the fault-injection scenarios against a stack of their own."
    )
    parser.add_argument(
        "scenarios", nargs="*", metavar="SCENARIO", help=f"any of {', '.join(SCENARIO_NAMES)} (default: all)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    unknown = set(args.scenarios) - set(SCENARIO_NAMES)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")

    run_dir = BASE_DIR / "reports" / f"chaos-{datetime.now():%Y%m%d-%H%M%S}"
    run_dir.mkdir(parents=True, exist_ok=True)
    database = fresh_database(f"flashsale_chaos_{os.getpid()}")
    env = {
        "DATABASE_URL": database.url,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        **FAST_RECOVERY_ENV,
    }
    bench = Bench.start(
        run_dir, database=database, env=env, web=True,
        PAYMENT_LATENCY_SECONDS="0.1", PAYMENT_PROVIDER_CONCURRENCY="0",
    )  # fmt: skip
    try:
        # The scenarios read the database through Django, so they load once the bench has set it up.
        from orders.reconciliation import reconcile

        from .exactly_once import WITNESSED, all_scenarios
        from .scenarios import ChaosRig

        rig = ChaosRig(
            bench.stack, bench.stack.env["WEB_URL"], bench.sandbox, env, bench.restart_sqs, sku="travel-mug"
        )
        print(f"chaos: {database.description}, logs in {run_dir / 'logs'}", flush=True)
        results = []
        scenarios = all_scenarios()
        for name in args.scenarios or SCENARIO_NAMES:
            started, since = time.monotonic(), datetime.now(UTC)
            result = scenarios[name](rig)
            result["seconds"] = round(time.monotonic() - started, 1)
            # The witness after every scenario: the provider's books against the orders of its window.
            books = reconcile(since=since)
            result.setdefault("reconciliation", books.line())
            for kind in WITNESSED:
                result[kind] = max(result.get(kind, 0), books.count(kind))
            results.append(result)
            print(f"{name:<24} {result['line']}", flush=True)
            print(f"{'':<24} books: {books.line()}", flush=True)
        (args.json or run_dir / "chaos.json").write_text(json.dumps(results, indent=2, default=str))
        promises = (
            "lost", "charged_twice", "extra_charges", "oversold", "leaked", "ledger_disagrees",
            "unexpected_responses", *WITNESSED, "two_orders_per_checkout", "lease_expiries",
            "over_limit", "miscounted",
        )  # fmt: skip
        broken = [r for r in results if any(r.get(promise) for promise in promises)]
        return 1 if broken else 0
    finally:
        bench.stop()


if __name__ == "__main__":
    sys.exit(main())
