"""`make run`'s announcer: wait until the web answers /readyz with 200, then say where the shop is.

    python -m devstack.ready http://127.0.0.1:8000

While the shop is not ready it prints which checks fail (every 10 s); once ready it prints the URLs
and then waits quietly: honcho stops every process when one exits, so this one stays.
"""

from __future__ import annotations

import signal
import sys
import time

from devstack.stack import wait_for_http


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m devstack.ready BASE_URL", file=sys.stderr)
        return 2
    base = argv[0].rstrip("/")
    started = time.monotonic()
    while True:
        try:
            wait_for_http(f"{base}/readyz", timeout=10, ready=True)
            break
        except TimeoutError as exc:
            print(f"not ready yet: {exc}", flush=True)
        except RuntimeError as exc:
            print(exc, flush=True)
    print(
        f"ready in {time.monotonic() - started:.1f}s: shop {base}/  admin {base}/admin/  "
        f"operations {base}/admin/operations/",
        flush=True,
    )
    signal.pause()  # until honcho stops us with the rest
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
