"""wrk, the C load generator: a closed loop of N connections, as fast as the server answers.

Locust (Python, gevent) tops out near a core's worth of requests on this machine before the
shop does; wrk costs a small fraction of that per request, so the saturation phase
(loadtests/study/saturation.py) measures the stack's ceiling rather than the load generator's.

wrk is Debian's package (4.1.0); `ensure_installed` installs it with apt-get when it is missing,
as .ci/run installs Chromium. Each run gets a Lua script: the method, the JSON bodies (cycled, one
a request) and a `done()` hook that prints the summary as one JSON line, so that the figures are
wrk's own numbers rather than its rounded text ("4.90ms"); the text is kept beside it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from loadtests.instruments import wait_reaping
from sizing.results import WrkStats

APT_INSTALL = ["apt-get", "install", "-y", "-qq", "wrk"]
_MARKER = "WRK_JSON "
# Lua long brackets of level 2: a body is pasted as is (a JSON text cannot hold "]==]").
_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, '
    .. '"timeout": %d, "mean_us": %.1f, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\\n',
    "MARKER", summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def ensure_installed(say: Callable[[str], None]) -> str:
    """The path of wrk, installed with apt-get first when it is missing (as root, like .ci/run)."""
    found = shutil.which("wrk")
    if found:
        return found
    command = " ".join(APT_INSTALL)
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SystemExit(
            f"The saturation phase needs wrk (the C load generator), which is not installed. Install it "
            f"(Debian/Ubuntu: `sudo {command}`), or skip the phase with --saturation-seconds 0."
        )
    say(f"wrk is not installed; installing Debian's wrk for the saturation phase: {command}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    attempts = [APT_INSTALL, ["apt-get", "update", "-qq"], APT_INSTALL]  # the lists may be missing
    result = None
    for argv in attempts:
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
        if argv == APT_INSTALL and result.returncode == 0:
            break
    found = shutil.which("wrk")
    if not found:
        output = (result.stdout + result.stderr)[-2000:] if result else ""
        raise SystemExit(f"`{command}` did not install wrk; run it yourself and retry.\n{output}")
    return found


def script(*, method: str, bodies: list[dict] | None = None) -> str:
    """A wrk Lua script: `method`, JSON `bodies` sent in turn (one per request), and the summary hook."""
    lines = [f'wrk.method = "{method}"']
    texts = [json.dumps(body, ensure_ascii=True, separators=(",", ":")) for body in bodies or []]
    if texts:
        lines.append('wrk.headers["Content-Type"] = "application/json"')
        lines.append(f"wrk.body = [==[{texts[0]}]==]")
    if len(texts) > 1:
        # One body a request, in turn: each thread has its own Lua state and its own counter.
        lines.append("local bodies = {" + ", ".join(f"[==[{t}]==]" for t in texts) + "}")
        lines.append("local turn = 0")
        lines.append("request = function()")
        lines.append("  turn = turn % #bodies + 1")
        lines.append("  return wrk.format(nil, nil, nil, bodies[turn])")
        lines.append("end")
    return "\n".join(lines) + "\n" + _DONE.replace('"MARKER"', json.dumps(_MARKER))


@dataclass
class WrkRun:
    """One wrk run as a subprocess; its output lands at `prefix`.txt, its script at `prefix`.lua.

    `cpu_seconds` is the CPU wrk used, read from the kernel when it exits (wait4), as for Locust.
    """

    prefix: Path
    url: str
    seconds: float
    connections: int
    threads: int
    lua: str
    binary: str = "wrk"
    timeout_seconds: float = 10.0
    popen: subprocess.Popen | None = None
    started_at: float = 0.0
    cpu_seconds: float = 0.0
    output: str = field(default="", repr=False)

    def start(self) -> WrkRun:
        script_path = self.prefix.with_suffix(".lua")
        script_path.write_text(self.lua)
        argv = [
            self.binary, "-t", str(self.threads), "-c", str(self.connections),
            "-d", f"{max(1, round(self.seconds))}s", "--timeout", f"{self.timeout_seconds:g}s",
            "--latency", "-s", str(script_path), self.url,
        ]  # fmt: skip
        out = open(self.prefix.with_suffix(".txt"), "wb")  # noqa: SIM115 - kept for the child's lifetime
        self.started_at = time.time()
        self.popen = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        return self

    def wait(self, on_tick: Callable[[], None] | None = None) -> WrkStats:
        """Wait for wrk to finish (killing it past its time plus 30 s); return its summary."""
        assert self.popen is not None
        deadline = time.monotonic() + self.seconds + self.timeout_seconds + 30
        self.cpu_seconds = wait_reaping(self.popen, deadline, on_tick)
        self.output = self.prefix.with_suffix(".txt").read_text(errors="replace")
        return parse(self.output, source=self.prefix.with_suffix(".txt"))


def parse(output: str, *, source: Path | str = "wrk") -> WrkStats:
    """The summary the script's `done()` printed (microseconds), in WrkStats' units."""
    line = next((x for x in output.splitlines() if x.startswith(_MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary; see {source}:\n{output[-1500:]}")
    d = json.loads(line[len(_MARKER) :])
    return WrkStats(
        requests=d["requests"],
        seconds=d["duration_us"] / 1e6,
        non_2xx=d["status"],
        socket_errors=d["connect"] + d["read"] + d["write"] + d["timeout"],
        timeouts=d["timeout"],
        mean_ms=d["mean_us"] / 1000,
        p50_ms=d["p50_us"] / 1000,
        p90_ms=d["p90_us"] / 1000,
        p99_ms=d["p99_us"] / 1000,
        max_ms=d["max_us"] / 1000,
    )
