"""Re-create the seed report's measurements on a stack of our own: `python -m loadtests.experiment`.

Makes a fresh PostgreSQL database (`loadtests.bench.fresh_database`), starts the
bench (SQS server, payment sandbox, web) on loopback, runs the study's phases
(`loadtests.study`, estimates per phase in `loadtests/study/__init__.py`) and writes
`reports/<timestamp>/`: report.md, results.json (schema in sizing/results.py), data/*.csv, *.png.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from core.timeouts import Timeouts
from devstack.stack import BASE_DIR
from loadtests.bench import POLL_SECONDS, Bench, fresh_database
from loadtests.study.config import StudyConfig, build_parser, payment_timeout, resolve


def report_folder(out: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    folder = out / stamp
    for suffix in range(1, 100):  # two runs in one second get two folders
        if not folder.exists():
            break
        folder = out / f"{stamp}-{suffix}"
    folder.mkdir(parents=True)
    return folder


def print_estimate(config: StudyConfig) -> None:
    estimate = config.estimate()
    phases = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in estimate.items())
    print(f"Estimated {sum(estimate.values()) / 60:.1f} min: {phases}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    config = resolve(build_parser(BASE_DIR / "reports").parse_args(argv))
    print_estimate(config)
    began = time.monotonic()
    folder = report_folder(config.out)
    database = fresh_database(config.database_name, url=config.database_url)
    print(f"Database: {database.description}", file=sys.stderr, flush=True)
    env = {
        # The rest of the chain follows. The provider's own timeout is the workers' wait: at the
        # seed's limit of 1 a charge queues behind every other worker's, and the sandbox must not
        # time it out before the worker gives up (it would come back as an unknown outcome).
        **Timeouts.derive(payment=payment_timeout(config), provider=payment_timeout(config)).as_env(),
        "SQS_WAIT_TIME_SECONDS": str(POLL_SECONDS),  # a killed worker's open poll must not hold a job long
    }
    bench = Bench.start(
        folder, database=database, env=env,
        PAYMENT_LATENCY_SECONDS=str(config.latency), PAYMENT_PROVIDER_CONCURRENCY="1",
    )  # fmt: skip
    # The study reads orders with the ORM: it loads once the bench has set Django up.
    from loadtests.study.run import run

    try:
        run(
            config, bench, folder,
            command=shlex.join(["python", "-m", "loadtests.experiment", *argv]),
            stack_seconds=time.monotonic() - began,
        )  # fmt: skip
    except KeyboardInterrupt:
        print("\ninterrupted; stopping the stack", file=sys.stderr)
        return 130
    finally:
        bench.stop()
    print(f"\nReport: {folder / 'report.md'}  ({time.monotonic() - began:.0f} s)")
    print(json.dumps({"report": str(folder / "report.md")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
