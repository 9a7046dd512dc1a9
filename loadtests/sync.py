"""`python -m loadtests.sync`: the study's two sync phases alone (report section 1's sync columns).

Sync checkout at the seed's load against a provider of one slot, first as the pre-queue shop
(SYNC_CHECKOUT_QUEUE off), then behind the checkout queue with customers honouring its Retry-After
(loadtests/study/sync.py), on a stack of its own; prints one line of figures per phase and writes
sync-<timestamp>/results.json, Locust's CSVs and every order's timings. It takes the experiment's
options (`--users`, `--duration`, `--latency`, `--quick`, `--database-url`, `--database-name` …);
the others do nothing here. About twice `--duration` plus a minute.

    python -m loadtests.sync                                   # 20 users x 60 s, 3 s charges
    python -m loadtests.sync --duration 30 --database-name flashsale_sync
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime

from core.timeouts import Timeouts
from devstack.stack import BASE_DIR
from loadtests.bench import POLL_SECONDS, Bench
from loadtests.experiment import choose_database
from loadtests.study.config import build_parser, resolve
from sizing.results import SyncQueueRun, SyncRun


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(BASE_DIR / "reports")
    parser.prog, parser.description = "python -m loadtests.sync", __doc__.split("\n\n")[0]
    parser.set_defaults(database_name="flashsale_sync")
    config = resolve(parser.parse_args(sys.argv[1:] if argv is None else argv))
    folder = config.out / f"sync-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    folder.mkdir(parents=True)
    database = choose_database(config, folder)
    env = {**Timeouts.derive().as_env(), "SQS_WAIT_TIME_SECONDS": str(POLL_SECONDS)}
    bench = Bench.start(
        folder, database=database, env=env,
        PAYMENT_LATENCY_SECONDS=str(config.latency), PAYMENT_PROVIDER_CONCURRENCY="1",
    )  # fmt: skip
    # The phases read orders with the ORM: they load once the bench has set Django up.
    from loadtests.lab import Queue
    from loadtests.study import sync
    from loadtests.study.context import Lab, Progress

    try:
        queue = Queue(bench.stack.env["SQS_ENDPOINT_URL"], "")
        lab = Lab(bench, config, folder, queue, Progress(total=2), bench.stack.start_web())
        lab.data.mkdir(parents=True, exist_ok=True)
        lab.progress.phase("sync checkout")
        plain = sync.run(lab)
        lab.progress.phase("sync with the checkout queue")
        queued = sync.run_queued(lab)
    finally:
        bench.stop()
    lab.progress.done()
    figures = {"sync": asdict(plain), "sync_queue": asdict(queued)}
    (folder / "results.json").write_text(json.dumps(figures, indent=2))
    print(_line(plain, queued), f"\n{folder}", sep="")
    return 0


def _line(plain: SyncRun, q: SyncQueueRun) -> str:
    return (
        f"sync: {plain.checkout.requests} requests, {plain.checkout.failures} failed, max "
        f"{plain.checkout.max_ms / 1000:.1f} s, {plain.orders.paid} paid\n"
        f"sync with the checkout queue: {q.requests} requests ({q.queued.requests} × 503 checkout_queue, "
        f"{q.checkout.requests} final, {q.checkout.failures} failed), {q.orders.paid} paid; first try → "
        f"final p50 {q.waits.median_ms / 1000:.1f} s, p99 {q.waits.p99_ms / 1000:.1f} s; longest request "
        f"{q.longest_request_ms / 1000:.2f} s; {q.past_timeout} past the timeout; goodput "
        f"{q.goodput:.3f}/s = {q.efficiency:.3f} × C/L ({q.paid} paid in {q.paid_seconds:.1f} s); provider "
        f"max in flight {q.provider.max_in_flight}, max waiting {q.provider.max_waiting}"
    )


if __name__ == "__main__":
    sys.exit(main())
