"""The one module that talks to the payment provider.

Callers get a typed `ChargeResult` (or a `LedgerCharge` from the provider's books) or one of the
`payments.exceptions`; nothing HTTP leaks out. Every call runs under a wall-clock deadline
(payments.deadlines), not only per-read timeouts, and every answer that does not say for certain
what happened to the money is a `PaymentOutcomeUnknown`, never a failure.
"""

from __future__ import annotations

import json
import os
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

import certifi
import urllib3
from django.conf import settings

from . import deadlines
from .exceptions import (
    PaymentDeclined,
    PaymentInFlight,
    PaymentNotAuthorized,
    PaymentOutcomeUnknown,
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


@dataclass(frozen=True)
class LedgerCharge:
    """A charge as the provider's books show it (a lookup, a reconciliation)."""

    charge_id: str
    idempotency_key: str
    amount_minor: int
    currency: str
    created: datetime
    metadata: dict[str, str]


_pool_lock = threading.Lock()
_pool: tuple[int, urllib3.PoolManager] | None = None  # (the pid that built it, the pool)
# Idle connections kept per provider host: a worker's threads, or a web process's.
POOL_SIZE = 256


def _connections() -> urllib3.PoolManager:
    """The process's connections to the provider, shared by every thread.

    One urllib3 pool rather than an httpx client per thread: a request costs the caller about half
    the CPU (docs/performance.md), a connection is taken from
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
            manager = urllib3.PoolManager(
                num_pools=4,
                maxsize=POOL_SIZE,
                ssl_context=ssl.create_default_context(cafile=certifi.where()),
                retries=False,  # a retry is the task's decision (orders.tasks), with the same key
            )
            manager.pool_classes_by_scheme = deadlines.POOL_CLASSES  # connections a deadline can cut
            _pool = (os.getpid(), manager)
        return _pool[1]


def charge(request: ChargeRequest, *, timeout: float) -> ChargeResult:
    """Charge once per idempotency key, however often this is called with the same request.

    `timeout` is a wall-clock deadline for the whole call (connect, send, every byte of the
    answer); with none left the request is not sent at all.
    """
    body = {
        "amount": request.amount_minor,
        "currency": request.currency.lower(),
        "description": request.description,
        "metadata": request.metadata,
    }
    status, answer, headers = _call(
        "POST",
        "/v1/charges",
        timeout=timeout,
        body=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Idempotency-Key": request.idempotency_key},
    )
    if status == 200:
        try:
            return ChargeResult(
                charge_id=str(answer["id"]),
                amount_minor=int(answer["amount"]),
                currency=str(answer["currency"]),
                replayed=headers.get("Idempotent-Replayed") == "true",
            )
        except (KeyError, TypeError, ValueError) as exc:
            unreadable = f"payment provider answered 200 with an unreadable charge: {exc!r}"
            raise PaymentOutcomeUnknown(unreadable) from exc
    found = answer.get("error")
    error: dict = found if isinstance(found, dict) else {}
    message = error.get("message") or f"HTTP {status}"
    if status == 402:
        raise PaymentDeclined(message)
    if status == 409:
        raise PaymentInFlight(f"payment provider is still working on this key (409): {message}")
    if status == 400 and error.get("type") == "idempotency_error":
        # We never send a key with other parameters; if the provider thinks so, what it did with the
        # first request is what matters, and only a lookup tells.
        raise PaymentOutcomeUnknown(f"payment provider refused the key's parameters (400): {message}")
    if status == 429:
        raise PaymentUnavailable(f"payment provider rate-limited us (429): {message}")
    if status >= 500:
        raise PaymentOutcomeUnknown(f"payment provider error {status}: {message}")
    _raise_for_refusal(status, message)
    raise PaymentRejected(f"payment provider rejected the request ({status}): {message}")


def find_charge(idempotency_key: str, *, timeout: float) -> LedgerCharge | None:
    """The charge the provider made with this key, if any (its books, not a charge attempt).

    Definitive only once every request sent with the key has settled at the provider (its own
    timeout after the last one was sent): a request still running there is not in its books yet.
    """
    page = _list({"idempotency_key": idempotency_key, "limit": 10}, timeout=timeout)
    charges = [charge for charge in page if charge.idempotency_key == idempotency_key]
    return charges[0] if charges else None


def list_charges(*, created_gte: datetime, created_lt: datetime, timeout: float) -> Iterator[LedgerCharge]:
    """Every charge the provider made in [created_gte, created_lt), oldest first, page by page."""
    params: dict[str, str | int | float] = {
        "created_gte": created_gte.timestamp(),
        "created_lt": created_lt.timestamp(),
        "limit": LIST_PAGE_SIZE,
    }
    while True:
        page = _list(params, timeout=timeout)
        yield from page
        if len(page) < LIST_PAGE_SIZE:
            return
        params["starting_after"] = page[-1].charge_id


LIST_PAGE_SIZE = 500


def _list(params: dict, *, timeout: float) -> list[LedgerCharge]:
    status, answer, _ = _call("GET", "/v1/charges?" + urlencode(params), timeout=timeout)
    if status != 200:
        message = (answer.get("error") or {}).get("message") or f"HTTP {status}"
        if status == 429 or status >= 500:
            raise PaymentUnavailable(f"payment provider error {status} listing charges: {message}")
        _raise_for_refusal(status, message)
        raise PaymentRejected(f"payment provider refused to list charges ({status}): {message}")
    try:
        return [
            LedgerCharge(
                charge_id=str(item["id"]),
                idempotency_key=str(item.get("idempotency_key") or ""),
                amount_minor=int(item["amount"]),
                currency=str(item["currency"]),
                created=datetime.fromtimestamp(float(item["created"]), tz=UTC),
                metadata=dict(item.get("metadata") or {}),
            )
            for item in answer["data"]
            if item.get("status", "succeeded") == "succeeded"
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise PaymentUnavailable(f"payment provider listed charges we cannot read: {exc!r}") from exc


def _raise_for_refusal(status: int, message: str) -> None:
    if status in (401, 403):
        raise PaymentNotAuthorized(f"payment provider refused our API key ({status}): {message}")


def _call(
    method: str, path: str, *, timeout: float, body: bytes | None = None, headers: dict | None = None
) -> tuple[int, dict, dict]:
    """One request under a wall-clock deadline: (status, JSON body or {}, headers).

    Raises PaymentUnavailable when the request surely never reached the provider (no time left,
    a refused connection) and PaymentTimeout / PaymentOutcomeUnknown when it may have.
    """
    if timeout <= 0:
        raise PaymentUnavailable("no time left for a provider call; not sent")
    with deadlines.deadline(timeout) as watch:
        try:
            response = _connections().request(
                method,
                settings.PAYMENT_PROVIDER_URL.rstrip("/") + path,
                body=body,
                headers={"Authorization": f"Bearer {settings.PAYMENT_PROVIDER_API_KEY}", **(headers or {})},
                timeout=urllib3.Timeout(connect=min(timeout, 5.0), read=timeout),
                redirect=False,
                preload_content=False,  # read under the deadline; released once it ended
            )
            try:
                data = response.read()
            finally:
                watch.end()
                response.release_conn()
        except urllib3.exceptions.ConnectTimeoutError as exc:  # refused or no connection: nothing sent
            raise PaymentUnavailable(f"payment provider unreachable: {exc}") from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if watch.expired or isinstance(exc, urllib3.exceptions.TimeoutError):
                raise PaymentTimeout(f"payment provider did not answer within {timeout:g}s") from exc
            raise PaymentOutcomeUnknown(f"payment provider connection lost: {exc!r}") from exc
    if watch.expired:  # cut off while reading what looked like a whole answer
        raise PaymentTimeout(f"payment provider did not answer within {timeout:g}s")
    return response.status, _json(data), dict(response.headers)


def _json(data: bytes) -> dict:
    try:
        body = json.loads(data)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
