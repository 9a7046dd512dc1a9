"""Liveness for the processes no load balancer probes: the worker, the sweeper and the relay touch a file.

    python -m observability.heartbeat worker --max-age 60     # exit 0 if the worker beat in the last 60 s

The worker beats from its SQS poll loop (queues/sqs_transport.py: each completed receive, and each
look at a full pool), so a consumer that stopped polling stops beating even while the process and
its event loop live; an idle worker beats once per long poll (SQS_WAIT_TIME_SECONDS, at most 20 s).
The sweeper beats once per pass; the relay once a second while each of its threads has finished a
pass within RELAY_STALL_SECONDS (30), so a thread stuck in a call stops the beat. The ECS
container health checks run the command above.
Django-free and import-light on purpose: a health check runs every 30 s in every task.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROLES = ("worker", "sweeper", "relay")


def path(role: str, environ=os.environ) -> Path:
    return Path(environ.get("HEARTBEAT_DIR", "/tmp")) / f"flashsale-{role}.heartbeat"


def beat(role: str) -> None:
    path(role).touch()


def age(role: str, now: float | None = None) -> float | None:
    """Seconds since `role` last beat, or None if it never did."""
    try:
        return (time.time() if now is None else now) - path(role).stat().st_mtime
    except FileNotFoundError:
        return None


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 3) or argv[0] not in ROLES or (len(argv) == 3 and argv[1] != "--max-age"):
        roles = ",".join(ROLES)
        print(f"usage: python -m observability.heartbeat {{{roles}}} [--max-age SECONDS]", file=sys.stderr)
        return 2
    max_age = float(argv[2]) if len(argv) == 3 else 60.0
    seconds = age(argv[0])
    if seconds is None or seconds > max_age:
        print(f"{argv[0]}: no heartbeat within {max_age:g}s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
