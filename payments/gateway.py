"""The one module that talks to the payment provider.

Callers get a typed `ChargeResult` or one of the `payments.exceptions`; nothing HTTP leaks out.
"""

from __future__ import annotations

import logging
import ssl
import threading
from dataclasses import dataclass

import certifi
import httpx
from django.conf import settings

from .exceptions import (
    PaymentDeclined,
    PaymentNotAuthorized,
    PaymentRejected,
    PaymentTimeout,
    PaymentUnavailable,
)

log = logging.getLogger(__name__)


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


_local = threading.local()


_tls_lock = threading.Lock()
_tls_context: ssl.SSLContext | None = None


def _tls() -> ssl.SSLContext:
    """One TLS context for every thread's client: httpx would load the CA bundle once per client
    (~50 ms of CPU and ~1 MB each). Built once, under a lock: a worker's first wave starts its
    threads together, and `functools.cache` alone let 17 of 50 build their own."""
    with _tls_lock:
        global _tls_context
        if _tls_context is None:
            _tls_context = ssl.create_default_context(cafile=certifi.where())
        return _tls_context


def _client() -> httpx.Client:
    """This thread's client for the provider's URL and key (settings may change under tests).

    One per thread, each keeping its one connection alive, rather than one pool shared by every
    thread: httpcore looks through all of a pool's connections (a readability check on each socket)
    to place every request, so a worker of 100 threads sharing one pool spent about 8 % of its CPU
    on that scan (py-spy, drain study at N = 100).
    """
    base_url, api_key = settings.PAYMENT_PROVIDER_URL, settings.PAYMENT_PROVIDER_API_KEY
    client: httpx.Client | None = getattr(_local, "client", None)
    if client is None or _local.key != (base_url, api_key):
        if client is not None:
            client.close()
        client = _local.client = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            verify=_tls(),
            # Not the environment's proxy settings: reading them costs each new client ~4 ms of CPU,
            # 200 threads' worth in a worker's first wave. The provider is reached directly.
            trust_env=False,
        )
        _local.key = (base_url, api_key)
    return client


def charge(request: ChargeRequest, *, timeout: float) -> ChargeResult:
    """Charge once per idempotency key, however often this is called with the same request."""
    try:
        response = _client().post(
            "/v1/charges",
            json={
                "amount": request.amount_minor,
                "currency": request.currency.lower(),
                "description": request.description,
                "metadata": request.metadata,
            },
            headers={"Idempotency-Key": request.idempotency_key},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        )
    except httpx.TimeoutException as exc:
        raise PaymentTimeout(f"payment provider did not answer within {timeout:g}s") from exc
    except httpx.HTTPError as exc:
        raise PaymentUnavailable(f"payment provider unreachable: {exc}") from exc

    body = _json(response)
    if response.status_code == 200:
        return ChargeResult(
            charge_id=body["id"],
            amount_minor=body["amount"],
            currency=body["currency"],
            replayed=response.headers.get("Idempotent-Replayed") == "true",
        )
    message = body.get("error", {}).get("message") or response.reason_phrase
    if response.status_code == 402:
        raise PaymentDeclined(message)
    if response.status_code in (401, 403):
        raise PaymentNotAuthorized(
            f"payment provider refused our API key ({response.status_code}): {message}"
        )
    if response.status_code == 429 or response.status_code >= 500:
        raise PaymentUnavailable(f"payment provider error {response.status_code}: {message}")
    raise PaymentRejected(f"payment provider rejected the request ({response.status_code}): {message}")


def _json(response: httpx.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
