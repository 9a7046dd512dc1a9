"""What one provider call costs the caller's CPU: the gateway against the sandbox, no latency.

``python -m loadtests.charge_cost`` starts the provider sandbox (no latency, no limit) and charges
``--charges`` times through ``payments.gateway.charge``, first from one thread, then from
``--threads`` threads at once. It prints the CPU this process spent per charge (the sandbox's is
its own) and the wall time, so that a change to the provider client is measured, not guessed: a
worker of 200 threads pays this once per order, under one GIL.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path

from devstack.stack import Stack


def _charge_many(count: int) -> None:
    from payments import gateway

    for _ in range(count):
        gateway.charge(
            gateway.ChargeRequest(
                amount_minor=1999,
                currency="USD",
                idempotency_key=uuid.uuid4().hex,
                description="Order cost-probe",
                metadata={"order_id": "cost-probe", "email": "buyer@example.com"},
            ),
            timeout=10,
        )


def measure(charges: int, threads: int) -> tuple[float, float]:
    """CPU ms and wall ms per charge, `charges` split over `threads` threads."""
    per_thread = max(1, charges // threads)
    workers = [threading.Thread(target=_charge_many, args=(per_thread,)) for _ in range(threads)]
    cpu, wall = time.process_time(), time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    done = per_thread * threads
    return (time.process_time() - cpu) / done * 1000, (time.perf_counter() - wall) / done * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--charges", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=20)
    args = parser.parse_args()

    stack = Stack.create(Path(tempfile.mkdtemp(prefix="charge-cost-")))
    try:
        stack.start_sandbox(PAYMENT_LATENCY_SECONDS="0", PAYMENT_PROVIDER_CONCURRENCY="0")
        os.environ.update(stack.env)
        import django

        django.setup()
        _charge_many(20)  # connections and imports warm
        for threads in (1, args.threads):
            cpu, wall = measure(args.charges, threads)
            print(f"threads {threads:>3}  CPU {cpu:.3f} ms/charge  wall {wall:.3f} ms/charge")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
