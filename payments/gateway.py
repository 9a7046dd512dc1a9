"""The one module that talks to the payment provider.

Callers get a typed `ChargeResult` or one of the `payments.exceptions`; nothing HTTP leaks out.
"""

from __future__ import annotations

import json
import os
import ssl
import threading
from dataclasses import dataclass

import certifi
import urllib3
from django.conf import settings

from .exceptions import (
    PaymentDeclined,
    PaymentNotAuthorized,
    PaymentRejected,
    PaymentTimeout,
    PaymentUnavailable,
)


@dataclass(frozen=True)
class ChargeRequest:
    amount_minor: int
    currency: str
    idempotency_key: str
    description: str
    metadata: dict[str, str]


@dataclass(frozen=True)
class ChargeResult:
    charge_id: str
    amount_minor: int
    currency: str
    replayed: bool


_pool_lock = threading.Lock()
_pool: tuple[int, urllib3.PoolManager] | None = None  # (the pid that built it, the pool)
# Idle connections kept per provider host: a worker's threads, or a web process's.
POOL_SIZE = 256


def _connections() -> urllib3.PoolManager:
    """The process's connections to the provider, shared by every thread.

    One urllib3 pool rather than an httpx client per thread: a request costs the caller about half
    the CPU (0.78 against 1.37 ms, `python -m loadtests.charge_cost`), a connection is taken from
    the pool in O(1) (httpcore looked through every connection of a shared pool), and a worker's
    first wave builds no client per thread. Built once per process, under a lock (a worker's first
    wave starts its threads together); a forked child builds its own rather than share the
    parent's sockets. The TLS context loads the CA bundle once. `maxsize` keeps that many idle
    connections alive; a busier moment opens more and closes the extra ones after use.
    """
    global _pool
    built = _pool
    if built is not None and built[0] == os.getpid():
        return built[1]
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (
                os.getpid(),
                urllib3.PoolManager(
                    num_pools=4,
                    maxsize=POOL_SIZE,
                    ssl_context=ssl.create_default_context(cafile=certifi.where()),
                    retries=False,  # a retry is the task's decision (orders.tasks), with the same key
                ),
            )
        return _pool[1]


def charge(request: ChargeRequest, *, timeout: float) -> ChargeResult:
    """Charge once per idempotency key, however often this is called with the same request."""
    body = {
        "amount": request.amount_minor,
        "currency": request.currency.lower(),
        "description": request.description,
        "metadata": request.metadata,
    }
    try:
        response = _connections().request(
            "POST",
            settings.PAYMENT_PROVIDER_URL.rstrip("/") + "/v1/charges",
            body=json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {settings.PAYMENT_PROVIDER_API_KEY}",
                "Content-Type": "application/json",
                "Idempotency-Key": request.idempotency_key,
            },
            timeout=urllib3.Timeout(connect=min(timeout, 5.0), read=timeout),
            redirect=False,
        )
    except urllib3.exceptions.NewConnectionError as exc:  # a ConnectTimeoutError to urllib3, but refused
        raise PaymentUnavailable(f"payment provider unreachable: {exc}") from exc
    except urllib3.exceptions.TimeoutError as exc:
        raise PaymentTimeout(f"payment provider did not answer within {timeout:g}s") from exc
    except urllib3.exceptions.HTTPError as exc:
        raise PaymentUnavailable(f"payment provider unreachable: {exc}") from exc

    answer = _json(response)
    if response.status == 200:
        return ChargeResult(
            charge_id=answer["id"],
            amount_minor=answer["amount"],
            currency=answer["currency"],
            replayed=response.headers.get("Idempotent-Replayed") == "true",
        )
    message = answer.get("error", {}).get("message") or response.reason
    if response.status == 402:
        raise PaymentDeclined(message)
    if response.status in (401, 403):
        raise PaymentNotAuthorized(f"payment provider refused our API key ({response.status}): {message}")
    if response.status == 429 or response.status >= 500:
        raise PaymentUnavailable(f"payment provider error {response.status}: {message}")
    raise PaymentRejected(f"payment provider rejected the request ({response.status}): {message}")


def _json(response: urllib3.BaseHTTPResponse) -> dict:
    try:
        body = json.loads(response.data)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
