"""The bench's own behaviour (the studies that use it are tested in test_drain and the smoke test)."""

import signal
import subprocess
import sys

from devstack.stack import BASE_DIR

# A process that holds a "stack" the way the lab's commands do: start, then `finally: stop`.
HOLDER = """
import time
from loadtests.bench import stop_on_sigterm
stop_on_sigterm()
try:
    print("started", flush=True)
    time.sleep(60)
finally:
    print("stack stopped", flush=True)
"""


def test_sigterm_unwinds_through_the_callers_finally_so_the_stack_is_stopped():
    proc = subprocess.Popen([sys.executable, "-c", HOLDER], cwd=BASE_DIR, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "started"

    proc.send_signal(signal.SIGTERM)

    out, _ = proc.communicate(timeout=30)
    assert out.strip() == "stack stopped"
    assert proc.returncode == 128 + signal.SIGTERM
