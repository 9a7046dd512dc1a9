"""Phase: the SQS server's own ceiling at a backlog of 0, 1k and 10k messages, before the shop runs.

At each depth: fill a queue of its own to the depth (SendMessageBatch), then `threads` boto3
clients send single SendMessage calls for `seconds`, then receive (10 at a time) and delete
(DeleteMessageBatch) for `seconds` or until the backlog is back at the depth, so that the receive
rate is measured at that depth too. The clients' own CPU (this process) is reported beside the
server's: on two cores, a client using most of one says the figure is partly the client's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import boto3
import psutil

from loadtests.study.context import Lab
from sizing.results import SqsCeiling

QUEUE_NAME = "lab-ceiling"
BODY = '{"task": "orders.charge_order", "args": ["00000000-0000-0000-0000-000000000000"]}'


def _client(endpoint: str):
    return boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")


def _parallel(endpoint: str, threads: int, work: Callable[[object], int]) -> tuple[int, float]:
    """Run `work(client)` on `threads` threads, each with its own warmed client; (total, seconds)."""
    return_values: list[int] = []
    ready = threading.Barrier(threads + 1)

    def one(client) -> None:
        ready.wait()
        return_values.append(work(client))

    clients = [_client(endpoint) for _ in range(threads)]
    for client in clients:  # connect outside the clock
        client.get_queue_url(QueueName=QUEUE_NAME)
    with ThreadPoolExecutor(threads) as pool:
        for client in clients:
            pool.submit(one, client)
        ready.wait()
        started = time.monotonic()
    return sum(return_values), time.monotonic() - started


def measure(endpoint: str, *, depth: int, seconds: float, threads: int, server_pid: int) -> SqsCeiling:
    admin = _client(endpoint)
    url = admin.create_queue(QueueName=QUEUE_NAME)["QueueUrl"]
    entries = [{"Id": str(i), "MessageBody": BODY} for i in range(10)]
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda _: admin.send_message_batch(QueueUrl=url, Entries=entries), range(depth // 10)))
    me, server = psutil.Process(), psutil.Process(server_pid)
    cpu_before = (sum(me.cpu_times()[:2]), sum(server.cpu_times()[:2]), time.monotonic())

    def send(client) -> int:
        sent, deadline = 0, time.monotonic() + seconds
        while time.monotonic() < deadline:
            client.send_message(QueueUrl=url, MessageBody=BODY)
            sent += 1
        return sent

    sends, send_seconds = _parallel(endpoint, threads, send)
    budget = threading.Semaphore(sends)  # receive at most what was sent: the backlog stays at depth

    def receive(client) -> int:
        received, deadline = 0, time.monotonic() + seconds
        while time.monotonic() < deadline and budget.acquire(blocking=False):
            messages = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            for _ in messages[1:]:
                budget.acquire(blocking=False)
            if messages:
                client.delete_message_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
                    ],
                )
            received += len(messages)
        return received

    received, receive_seconds = _parallel(endpoint, threads, receive)
    wall = time.monotonic() - cpu_before[2]
    client_cpu = sum(me.cpu_times()[:2]) - cpu_before[0]
    server_cpu = sum(server.cpu_times()[:2]) - cpu_before[1]
    admin.delete_queue(QueueUrl=url)
    return SqsCeiling(
        depth=depth,
        threads=threads,
        sends=sends,
        send_seconds=round(send_seconds, 3),
        received=received,
        receive_seconds=round(receive_seconds, 3),
        client_cores=round(client_cpu / wall, 2),
        server_cores=round(server_cpu / wall, 2),
    )


def run(lab: Lab) -> list[SqsCeiling]:
    c = lab.config
    results = []
    for depth in c.ceiling_depths:
        lab.progress.status(
            f"depth {depth:,}: {c.ceiling_threads} boto3 threads, {c.ceiling_seconds:g} s each way"
        )
        ceiling = measure(
            lab.bench.stack.env["SQS_ENDPOINT_URL"],
            depth=depth,
            seconds=c.ceiling_seconds,
            threads=c.ceiling_threads,
            server_pid=lab.pid("sqs"),
        )
        results.append(ceiling)
        lab.progress.status(
            f"depth {depth:,}: {ceiling.send_rate:.0f} sends/s, {ceiling.receive_rate:.0f} "
            f"received+deleted/s",
            force=True,
        )
    return results
