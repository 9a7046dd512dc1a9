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


# Says it is ready, waits for a line, burns 3 ms of CPU, says so, then idles until killed.
BURN_3_MS_ON_CUE = (
    "import sys, time\n"
    "print('ready', flush=True)\n"
    "sys.stdin.readline()\n"
    "end = time.process_time() + 0.003\n"
    "while time.process_time() < end: pass\n"
    "print('burnt', flush=True)\n"
    "time.sleep(60)\n"
)


@pytest.mark.integration
def test_cpu_used_between_two_clock_ticks_is_counted_not_rounded_away():
    # A worker process that charged two orders in the smoke run used a few milliseconds: counted in
    # /proc/<pid>/stat's 10 ms ticks, that read as 0.0 or 0.01.
    burner = subprocess.Popen(
        [sys.executable, "-c", BURN_3_MS_ON_CUE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert burner.stdout.readline().strip() == "ready"  # its start-up is over before the meter starts
        meter = CpuMeter({"burner": burner.pid}).start()
        burner.stdin.write("go\n")
        burner.stdin.flush()
        assert burner.stdout.readline().strip() == "burnt"
        used = meter.stop()
    finally:
        burner.kill()
        burner.wait()

    assert 0.003 <= used["burner"] < 0.009
