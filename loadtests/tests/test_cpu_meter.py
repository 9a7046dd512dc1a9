"""The lab's CPU meter: what a process tree used between start() and stop(), or from its restart()."""

import subprocess
import sys
import time

import pytest

from loadtests.lab import CpuMeter

# Burns ~0.3 s of CPU, says so, then idles until killed: its start-up, then nothing.
BURN_THEN_IDLE = (
    "import sys, time\n"
    "end = time.process_time() + 0.3\n"
    "while time.process_time() < end: pass\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)


@pytest.mark.integration
def test_a_process_counted_from_its_restart_leaves_out_what_it_used_before():
    burner = subprocess.Popen([sys.executable, "-c", BURN_THEN_IDLE], stdout=subprocess.PIPE, text=True)
    try:
        meter = CpuMeter({"early": burner.pid, "late": burner.pid}).start()
        assert burner.stdout.readline().strip() == "ready"
        meter.restart("late")
        time.sleep(0.1)
        used = meter.stop()
    finally:
        burner.kill()
        burner.wait()

    assert used["early"] >= 0.2  # counted from start(): the burn
    assert used["late"] < 0.05  # counted from its restart(): only the idle that followed
