"""The lab's CPU meter: what a process tree used between start() and stop(), or from its own reading."""

import subprocess
import sys
import time

import pytest

from loadtests.instruments import CpuMeter

# Burns ~0.3 s of CPU (its start-up), says how much CPU it has used, burns ~0.1 s more at once (its
# work, begun before anyone read the line), then idles until killed.
START_THEN_WORK = (
    "import time\n"
    "end = time.process_time() + 0.3\n"
    "while time.process_time() < end: pass\n"
    "print(time.process_time(), flush=True)\n"
    "end = time.process_time() + 0.1\n"
    "while time.process_time() < end: pass\n"
    "time.sleep(60)\n"
)


@pytest.mark.integration
def test_a_process_counted_from_its_own_ready_reading_keeps_the_work_done_before_the_lab_saw_it():
    worker = subprocess.Popen([sys.executable, "-c", START_THEN_WORK], stdout=subprocess.PIPE, text=True)
    try:
        meter = CpuMeter({"whole": worker.pid, "work": worker.pid}).start()
        ready_cpu = float(worker.stdout.readline())
        time.sleep(0.5)  # the lab sees the line late: the work is done by now
        meter.count_from("work", ready_cpu)
        used = meter.stop()
    finally:
        worker.kill()
        worker.wait()

    assert used["whole"] >= 0.35  # from start(): start-up and work
    assert 0.09 <= used["work"] < 0.2  # from its own reading: the work, though it was over when counted


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
