"""Fault injection: the shop's promises (lose no accepted order, charge none twice) under stress.

``make chaos`` (``python -m loadtests.chaos``) starts its own stack — the SQS emulator, the payment
sandbox, gunicorn, celery workers and the sweeper — on a fresh database (PostgreSQL when
DATABASE_URL is set, else SQLite), runs the nine scenarios and prints one line of figures each.
Figures come from the database and the sandbox's ledger, never from the shop's own counters.
``make test`` runs small versions of the same scenarios (loadtests/tests/test_chaos.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from datetime import datetime
from pathlib import Path

from devstack.stack import BASE_DIR, Stack, free_port, fresh_database
from sandbox.client import SandboxClient

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
    database_url = fresh_database(run_dir, f"flashsale_chaos_{os.getpid()}")
    env = {
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        **FAST_RECOVERY_ENV,
    }
    stack = Stack.create(run_dir / "logs", extra_env=env)
    sqs_port = free_port()
    try:
        stack.start_sqs(sqs_port)
        stack.start_sandbox(PAYMENT_LATENCY_SECONDS="0.1", PAYMENT_PROVIDER_CONCURRENCY="0")
        os.environ.update({k: stack.env[k] for k in ("SQS_ENDPOINT_URL", "PAYMENT_PROVIDER_URL")})
        os.environ.update(env)
        stack.manage("migrate", "--noinput")
        stack.manage("seed_catalogue")
        stack.manage("create_queues")
        stack.start_web()
        import django

        django.setup()
        logging.getLogger().setLevel(logging.WARNING)  # the figures are the output
        # The scenarios read the database through Django, so they load once it is set up.
        from .scenarios import SCENARIOS, Lab

        def restart_sqs() -> None:
            stack.start_sqs(sqs_port)
            stack.manage("create_queues")

        sandbox = SandboxClient(stack.env["PAYMENT_PROVIDER_URL"])
        lab = Lab(stack, stack.env["WEB_URL"], sandbox, env, restart_sqs, sku="travel-mug")
        print(f"chaos: database {database_url.split('@')[-1]}, logs in {run_dir / 'logs'}", flush=True)
        results = []
        for name in args.scenarios or SCENARIO_NAMES:
            started = time.monotonic()
            result = SCENARIOS[name](lab)
            result["seconds"] = round(time.monotonic() - started, 1)
            results.append(result)
            print(f"{name:<20} {result['line']}", flush=True)
        (args.json or run_dir / "chaos.json").write_text(json.dumps(results, indent=2, default=str))
        promises = ("lost", "charged_twice", "extra_charges", "oversold", "leaked", "ledger_disagrees",
                    "unexpected_responses")  # fmt: skip
        broken = [r for r in results if any(r.get(promise) for promise in promises)]
        return 1 if broken else 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
