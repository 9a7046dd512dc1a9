"""Chaos for the outbox's relay: the relay and the web's processes SIGKILLed while a sale runs.

Import after Django is set up, like scenarios.py, whose ChaosRig, wait_settled and tally these use.

The web commits an order and answers; it holds no job. The relay (orders/relay.py) publishes the
null orders from the table, with their rows locked until SQS took the jobs and the stamp commits.
A SIGKILLed relay rolls back: its orders stay null, and the relay ECS starts again (here the lab's
supervisor) publishes them. A SIGKILLed web process may have committed an order without
answering. That order is null like any other, so the relay publishes it too. No sweeper runs in
this scenario: the relay alone must lose nothing.

The lab's own web cannot be used: under the test suite it is Django's live server, not gunicorn.
The scenario starts a gunicorn of its own on the lab's stack (`Stack.start_web`, with the lab's
worker environment), SIGKILLs that master's worker processes, and stops it at the end.
"""

from __future__ import annotations

import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import psutil
from django.db.models import Count

from devstack.stack import Process
from loadtests.bench import UNLIMITED_RATES
from orders.models import Order, OrderStatus

from .scenarios import ChaosRig, tally, wait_settled

FINAL = (OrderStatus.PAID, OrderStatus.FAILED)


@dataclass(frozen=True)
class Killed:
    """One SIGKILL, and how many of the run's orders were still null (unpublished) just before it."""

    target: str  # "relay" or "web"
    pid: int
    unpublished_before: int


def relay_and_web_killed(
    rig: ChaosRig, *, orders: int = 200, rate: float = 20, kills: int = 6, web_workers: int = 2,
    latency: float = 0.1, timeout: float = 120,
) -> dict:  # fmt: skip
    """Post `orders` async orders at `rate`/s while SIGKILLing, in turn, the relay and one of the
    web's worker processes, `kills` times in all; wait for every order to settle.

    The orders are the run's by their email, read from the database: a request cut off by a
    SIGKILL may have committed its order without answering, and that order must be charged too.
    No request is retried (a retry with its Idempotency-Key would wait for the dead request's lock).
    """
    rig.sandbox.reset(latency_seconds=latency, concurrency=0)
    rig.start_workers(2)
    relay = rig.ensure_relay()
    run = uuid.uuid4().hex[:8]
    email = f"relay-{run}@example.com"
    web, url = _start_web(rig, f"web-relay-{run}", workers=web_workers)
    killed: list[Killed] = []
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(1) as poster:
            posting = poster.submit(_post_paced, url, {"email": email, "sku": rig.sku}, orders, rate)
            window = orders / rate
            for index in range(kills):
                time.sleep(max(0.0, started + (index + 1) * window / (kills + 1) - time.monotonic()))
                if index % 2 == 0:
                    killed.append(_kill_relay(relay, email))
                else:
                    killed.append(_kill_a_web_worker(web, email, web_workers))
            answers = posting.result()
    finally:
        web.stop()
        if web in rig.stack.processes:
            rig.stack.processes.remove(web)
    ids = [str(i) for i in Order.objects.filter(email=email).values_list("id", flat=True)]
    wait_settled(ids, timeout=timeout)
    result = tally(ids, rig.sandbox)
    waits = sorted(
        (enqueued - created).total_seconds()
        for created, enqueued in Order.objects.filter(pk__in=ids).values_list("created_at", "enqueued_at")
        if enqueued is not None
    )
    waiting = Order.objects.filter(pk__in=ids).exclude(status__in=FINAL)
    not_final = dict(waiting.order_by().values_list("status").annotate(n=Count("id")))
    never_published = waiting.filter(enqueued_at__isnull=True).count()
    restarts = rig.restarts
    rig.stop_all()

    relay_kills = [k for k in killed if k.target == "relay"]
    web_kills = [k for k in killed if k.target == "web"]
    answered = sum(isinstance(a, httpx.Response) and a.status_code == 202 for a in answers)
    longest = waits[-1] if waits else 0.0
    return {
        "scenario": "relay-and-web-killed",
        "posted": orders,
        "answered_202": answered,
        "posts_without_answer": sum(not isinstance(a, httpx.Response) for a in answers),
        "orders_without_answer": max(0, len(ids) - answered),
        "relay_sigkills": len(relay_kills),
        "web_sigkills": len(web_kills),
        "unpublished_at_relay_kills": sum(k.unpublished_before for k in relay_kills),
        "publish_wait_p50_s": round(waits[len(waits) // 2], 3) if waits else None,
        "publish_wait_max_s": round(longest, 3),
        "never_published": never_published,  # not final and still null at the end
        "not_final": not_final,
        "kills": [k.__dict__ for k in killed],
        "restarts": restarts,
        **result.__dict__,
        "line": (
            f"{len(relay_kills)} relay SIGKILLs ({sum(k.unpublished_before for k in relay_kills)} orders "
            f"unpublished at the kills), {len(web_kills)} web SIGKILLs ({max(0, len(ids) - answered)} orders "
            f"placed without an answer)  longest accept→publish {longest:.1f}s  {result.line()}  "
            f"never published {never_published}"
        ),
    }


def _start_web(rig: ChaosRig, name: str, *, workers: int) -> tuple[Process, str]:
    """A gunicorn of the scenario's own on the lab's stack; the stack's WEB_URL is left as it was."""
    previous = rig.stack.env.get("WEB_URL")
    env = {**rig.worker_env, **UNLIMITED_RATES, "LOG_FORMAT": "json"}
    web = rig.stack.start_web(None, name=name, workers=workers, threads=8, **env)  # None: a free port
    url = rig.stack.env["WEB_URL"]
    if previous is None:
        rig.stack.env.pop("WEB_URL")
    else:
        rig.stack.env["WEB_URL"] = previous
    return web, url


def _post_paced(url: str, buyer: dict[str, str], count: int, rate: float, threads: int = 8) -> list:
    """POST `count` async orders, one every 1/`rate` s; each answer, or the error that replaced it."""
    body = {"email": buyer["email"], "items": [{"sku": buyer["sku"], "quantity": 1}]}
    started = time.monotonic()

    def post(index: int) -> httpx.Response | httpx.HTTPError:
        time.sleep(max(0.0, started + index / rate - time.monotonic()))
        try:
            return client.post("/api/orders/async", json=body)
        except httpx.HTTPError as exc:  # the process died under the request
            return exc

    limits = httpx.Limits(max_connections=threads)
    with httpx.Client(base_url=url, timeout=30, limits=limits) as client, ThreadPoolExecutor(threads) as pool:
        return list(pool.map(post, range(count)))


def _unpublished(email: str) -> int:
    return Order.objects.filter(email=email, enqueued_at__isnull=True).count()


def _kill_relay(relay: Process, email: str) -> Killed:
    """SIGKILL the relay once the supervisor has it running again; it restarts it after."""
    deadline = time.monotonic() + 30
    while not relay.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    unpublished = _unpublished(email)
    pid = relay.pid
    relay.kill(signal.SIGKILL)
    return Killed("relay", pid, unpublished)


def _kill_a_web_worker(web: Process, email: str, workers: int) -> Killed:
    """SIGKILL the longest-serving of the master's worker processes, once the master has all of
    them again (it is still replacing the last one killed)."""
    master = psutil.Process(web.pid)
    deadline = time.monotonic() + 30
    while len(children := master.children()) < workers and time.monotonic() < deadline:
        time.sleep(0.1)
    victim = min(children, key=lambda child: child.create_time())
    unpublished = _unpublished(email)
    victim.kill()
    psutil.wait_procs([victim], timeout=30)
    return Killed("web", victim.pid, unpublished)
