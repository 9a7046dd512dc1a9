"""Start and stop the shop's processes on loopback: for tests, `make chaos` and `make experiment`.

`make run` uses the Procfile instead; this module is for code that needs to start, kill and
restart the pieces itself (an SQS emulator, the payment sandbox, workers, the relay, the web
server) and know their ports. The web, worker and relay commands are config.processes', like
everywhere else. A web accepts orders and publishes nothing: a stack whose orders must reach the
workers starts a relay beside it (`start_relay`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

from config import processes

BASE_DIR = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


SQS_SERVER = BASE_DIR / "devstack" / "sqs_server" / "server.mjs"


def sqs_server_argv(*, port: int, queues: list[str]) -> list[str]:
    """The local SQS server's command (`npm ci --prefix devstack/sqs_server` installs it)."""
    if not (SQS_SERVER.parent / "node_modules" / "fauxqs").is_dir():
        raise RuntimeError("no local SQS server: `make install` runs npm ci in devstack/sqs_server")
    queue_args = [arg for queue in queues for arg in ("--queue", queue)]
    return ["node", str(SQS_SERVER), "--host", "127.0.0.1", "--port", str(port), *queue_args]


def local(argv: list[str]) -> list[str]:
    """Run a process command with this interpreter's own python and scripts (the venv's)."""
    if argv[0] == "python":
        return [sys.executable, *argv[1:]]
    return [str(BIN / argv[0]), *argv[1:]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(
    url: str, *, timeout: float = 30, proc: subprocess.Popen | None = None, ready: bool = False
) -> None:
    """Wait until `url` answers: any HTTP status, or with `ready` a 2xx (a readiness probe's yes)."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        try:
            with urlopen(url, timeout=3):
                return
        except URLError as exc:
            # An HTTP error status still means the server is up; a readiness probe's 503 means not yet.
            if getattr(exc, "code", None):
                if not ready:
                    return
                last = f"HTTP {exc.code}: {_body(exc)}"
        except (ConnectionError, TimeoutError, OSError):
            pass
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not come up within {timeout}s (last: {last})")
        time.sleep(0.1)


def _body(error: URLError) -> str:
    try:
        return error.read().decode(errors="replace")[:300]  # type: ignore[attr-defined]
    except Exception:
        return ""


@dataclass
class Process:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen | None = None

    def start(self) -> Process:
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.popen = subprocess.Popen(
            self.argv, env=self.env, cwd=BASE_DIR, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (a prefork worker's children die with it)."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)

    def stop(self, timeout: float = 15) -> None:
        if self.popen is None or not self.alive():
            return
        self.kill(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            self.popen.wait(5)


@dataclass
class Stack:
    """A set of shop processes sharing one environment (database, queue, provider URLs)."""

    log_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)

    @classmethod
    def create(cls, log_dir: Path, *, extra_env: Mapping[str, str] | None = None) -> Stack:
        log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(extra_env or {})}
        env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
        env.setdefault("AWS_ACCESS_KEY_ID", "local")
        env.setdefault("AWS_SECRET_ACCESS_KEY", "local")
        env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        return cls(log_dir=log_dir, env=env)

    def spawn(self, name: str, argv: list[str], **env: str) -> Process:
        process = Process(name, argv, {**self.env, **env}, self.log_dir / f"{name}.log").start()
        self.processes.append(process)
        return process

    def start_sqs(self, port: int | None = None) -> Process:
        """The local SQS server (devstack/sqs_server, fauxqs on Node) speaks the protocol over HTTP.

        The payment queue and its DLQ exist from the start (`manage.py create_queues` sets their
        attributes), so a restart looks like an SQS outage that lost the messages in flight.
        """
        port = port or free_port()
        url = f"http://127.0.0.1:{port}"
        queue = self.env.get("SQS_QUEUE_NAME", "flashsale-payments")
        dlq = self.env.get("SQS_DLQ_NAME", f"{queue}-dlq")
        argv = sqs_server_argv(port=port, queues=[queue, dlq])
        proc = self.spawn("sqs", argv)
        wait_for_http(f"{url}/health", proc=proc.popen)
        self.env["SQS_PORT"] = str(port)
        self.env["SQS_ENDPOINT_URL"] = url
        return proc

    def start_sandbox(self, port: int | None = None, **knobs: str) -> Process:
        port = port or free_port()
        proc = self.spawn("sandbox", [sys.executable, "-m", "sandbox", "--port", str(port)], **knobs)
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/health", proc=proc.popen)
        self.env["PAYMENT_PROVIDER_URL"] = url
        return proc

    def manage(self, *args: str, **env: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args], env={**self.env, **env}, cwd=BASE_DIR,
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return result.stdout

    def start_worker(
        self, name: str = "worker", *, concurrency: int = 4, pool: str = "threads", **env: str
    ) -> Process:
        """The worker command of config.processes, on this stack's environment."""
        argv = local(processes.worker_argv(concurrency=concurrency, pool=pool, hostname=f"{name}@%h"))
        # Celery's CLI applies CELERY_WORKER_POOL even over an explicit --pool=prefork.
        return self.spawn(name, argv, CELERY_WORKER_POOL=pool, **env)

    def start_relay(self, name: str = "relay", *, threads: int | None = None, **env: str) -> Process:
        """The relay command of config.processes: publishes the accepted orders' jobs (orders/relay.py)."""
        if threads is not None:
            env["RELAY_THREADS"] = str(threads)
        return self.spawn(name, local(processes.relay_argv()), **env)

    def start_web(
        self, port: int | None = None, *, threads: int = 32, workers: int = 2, name: str = "web", **env: str
    ) -> Process:
        """The web command of config.processes (gunicorn), on a free port; `env` adds to the stack's."""
        port = port or free_port()
        argv = local(
            processes.web_argv(
                bind=f"127.0.0.1:{port}",
                timeout=int(self.env.get("WEB_TIMEOUT_SECONDS", 120)),
                processes=workers,
                threads=threads,
                access_log=False,
            )
        )
        proc = self.spawn(name, argv, **env)
        url = f"http://127.0.0.1:{port}"
        # Ready, not just listening: the database, its migrations and SQS answer (observability/readiness.py).
        wait_for_http(f"{url}/readyz", proc=proc.popen, timeout=60, ready=True)
        self.env["WEB_URL"] = url
        return proc

    def stop_named(self, name: str) -> None:
        """Stop and forget the processes called `name` (e.g. "sqs", to stage an outage)."""
        for process in [p for p in self.processes if p.name == name]:
            process.stop()
            self.processes.remove(process)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
