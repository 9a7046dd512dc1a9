"""Chaos for the web's outbox: gunicorn worker processes stopped and killed while they hold jobs.

Import after Django is set up, like scenarios.py, whose Lab, wait_settled and tally these use.

A web process publishes an order's payment job after the response, from an in-memory outbox that
gathers ids for up to OUTBOX_LINGER_SECONDS (orders/outbox.py); the order's `enqueued_at` stays
null until SQS takes the job. SIGTERMed, a process publishes what it holds before it exits
(gunicorn's worker_exit hook, within OUTBOX_DRAIN_SECONDS); SIGKILLed, it loses those ids, and
the sweeper publishes their orders, still null, after SWEEP_GRACE_SECONDS.

The lab's own web cannot be used for this: its environment (and so its linger, 0.1 s) is fixed
when the bench starts it, and in the tests it is Django's live server, not gunicorn. The scenario
starts a gunicorn of its own on the lab's stack (`Stack.start_web`, with the lab's worker
environment: its database and recovery timings) with a longer linger, signals that master's worker
processes, and stops it at the end.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from django.db.models import Count

from devstack.stack import Process
from loadtests.bench import UNLIMITED_RATES
from orders.models import Order, OrderStatus

from .scenarios import Lab, tally, wait_settled

FINAL = (OrderStatus.PAID, OrderStatus.FAILED)


@dataclass(frozen=True)
class Signalled:
    """One signal to one gunicorn worker process, and what the database showed just before it."""

    signal: str  # "SIGTERM" or "SIGKILL"
    pid: int
    unpublished_before: int  # the run's orders still null just before (every web process's outbox)
    exit_s: float  # from the signal until the process was gone


def web_killed_with_outbox(lab: Lab, *, orders: int = 200, rate: float = 20, kills: int = 6,
                           linger: float = 0.8, web_workers: int = 2, latency: float = 0.1,
                           timeout: float = 120) -> dict:  # fmt: skip
    """Post `orders` async orders at `rate`/s while SIGTERMing and SIGKILLing (in turn) the web's
    worker processes `kills` times, each with jobs in its outbox; wait for every order to settle.

    `linger` is the web's OUTBOX_LINGER_SECONDS: at 20 orders/s over two processes each holds a few
    ids at any moment. It stays below the lab's SWEEP_GRACE_SECONDS (1 s), so that the sweeper does
    not publish what a live process is about to: the jobs published a grace or more after their
    order was placed are then the ones a killed process lost (`published_by_sweeper`).

    The orders are the run's by their email, read from the database: a request cut off by a
    SIGKILL may have committed its order without answering, and that order must be charged too.
    No request is retried (a retry with its Idempotency-Key would wait for the dead request's lock).
    """
    lab.sandbox.reset(latency_seconds=latency, concurrency=0)
    lab.start_workers(2)
    lab.start_sweeper()
    run = uuid.uuid4().hex[:8]
    email = f"outbox-{run}@example.com"
    web, url = _start_lingering_web(lab, f"web-outbox-{run}", linger=linger, workers=web_workers)
    signalled: list[Signalled] = []
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(1) as poster:
            posting = poster.submit(_post_paced, url, {"email": email, "sku": lab.sku}, orders, rate)
            window = orders / rate
            for index in range(kills):
                time.sleep(max(0.0, started + (index + 1) * window / (kills + 1) - time.monotonic()))
                sig = signal.SIGTERM if index % 2 == 0 else signal.SIGKILL
                signalled.append(_signal_a_worker(web, sig, email, web_workers))
            answers = posting.result()
    finally:
        web.stop()  # SIGTERM to the master: its workers drain their outboxes too
        if web in lab.stack.processes:
            lab.stack.processes.remove(web)
    drains = _drains_at_exit(web.log_path)
    ids = [str(i) for i in Order.objects.filter(email=email).values_list("id", flat=True)]
    wait_settled(ids, timeout=timeout)
    result = tally(ids, lab.sandbox)
    grace = float(lab.worker_env.get("SWEEP_GRACE_SECONDS", 10))
    # A job SQS took a grace or more after its order was placed came from the sweeper (see above).
    publish_delays = [
        (enqueued - created).total_seconds()
        for created, enqueued in Order.objects.filter(pk__in=ids).values_list("created_at", "enqueued_at")
        if enqueued is not None
    ]
    by_sweeper = sum(delay >= grace for delay in publish_delays)
    waiting = Order.objects.filter(pk__in=ids).exclude(status__in=FINAL)
    not_final = dict(waiting.order_by().values_list("status").annotate(n=Count("id")))
    never_published = waiting.filter(enqueued_at__isnull=True).count()
    restarts = lab.restarts
    lab.stop_all()

    terms = [s for s in signalled if s.signal == "SIGTERM"]
    kills_ = [s for s in signalled if s.signal == "SIGKILL"]
    held = sum(drains.get(s.pid, (0, 0))[0] for s in terms)
    unsent = sum(drains.get(s.pid, (0, 0))[1] for s in terms)
    answered = sum(isinstance(a, httpx.Response) and a.status_code == 202 for a in answers)
    return {
        "scenario": "web-killed-with-outbox",
        "linger_s": linger,
        "posted": orders,
        "answered_202": answered,
        "posts_without_answer": sum(not isinstance(a, httpx.Response) for a in answers),
        "orders_without_answer": max(0, len(ids) - answered),
        "sigterms": len(terms),
        "sigkills": len(kills_),
        "held_at_sigterm": held,  # what the SIGTERMed processes' outboxes held when they exited
        "unsent_at_sigterm": unsent,  # ... and could not publish within OUTBOX_DRAIN_SECONDS
        "unpublished_before_sigkill": sum(s.unpublished_before for s in kills_),
        "published_by_sweeper": by_sweeper,
        "never_published": never_published,  # not final and still null at the end
        "not_final": not_final,
        "signals": [s.__dict__ for s in signalled],
        "worker_restarts": restarts,
        **result.__dict__,
        "line": (
            f"{len(terms)} SIGTERMs (published {held - unsent}/{held} held jobs before exit)  "
            f"{len(kills_)} SIGKILLs ({sum(s.unpublished_before for s in kills_)} orders unpublished "
            f"at the kills, {by_sweeper} published by the sweeper)  {result.line()}  "
            f"never published {never_published}"
        ),
    }


def _start_lingering_web(lab: Lab, name: str, *, linger: float, workers: int) -> tuple[Process, str]:
    """A gunicorn of the scenario's own on the lab's stack; the stack's WEB_URL is left as it was."""
    previous = lab.stack.env.get("WEB_URL")
    env = {**lab.worker_env, **UNLIMITED_RATES, "OUTBOX_LINGER_SECONDS": f"{linger:g}", "LOG_FORMAT": "json"}
    web = lab.stack.start_web(None, name=name, workers=workers, threads=8, **env)  # None: a free port
    url = lab.stack.env["WEB_URL"]
    if previous is None:
        lab.stack.env.pop("WEB_URL")
    else:
        lab.stack.env["WEB_URL"] = previous
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


def _signal_a_worker(web: Process, sig: int, email: str, workers: int) -> Signalled:
    """Signal the longest-serving of the master's worker processes (the one most likely to hold
    ids: the other may still be booting), once the master has all of them again."""
    master = psutil.Process(web.pid)
    deadline = time.monotonic() + 30
    while len(children := master.children()) < workers and time.monotonic() < deadline:
        time.sleep(0.1)  # the master is still replacing the last one signalled
    victim = min(children, key=lambda child: child.create_time())
    unpublished = Order.objects.filter(email=email, enqueued_at__isnull=True).count()
    started = time.monotonic()
    os.kill(victim.pid, sig)
    psutil.wait_procs([victim], timeout=30)
    return Signalled(signal.Signals(sig).name, victim.pid, unpublished, round(time.monotonic() - started, 3))


def _drains_at_exit(log_path: Path) -> dict[int, tuple[int, int]]:
    """Per web process, from its exit's log line (orders.publishing): (ids held, ids left unsent)."""
    drains: dict[int, tuple[int, int]] = {}
    for line in log_path.read_text(errors="replace").splitlines():
        if '"outbox_held"' not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        drains[int(record["pid"])] = (int(record["outbox_held"]), int(record["outbox_unsent"]))
    return drains
