"""The payment provider sandbox: a Stripe-like charges API with the seed's limits.

Run it as its own process: ``python -m sandbox --port 8001``. It does not import
Django; the shop reaches it only over HTTP, through ``payments/gateway.py``.

- ``POST /v1/charges`` (JSON ``amount`` in minor units, ``currency``, ``description``,
  ``metadata``) with an ``Idempotency-Key`` header. A key seen before returns the first
  result and never charges again; a request for a key whose charge is still running waits for
  it and gets the same answer.
- Each charge takes ``PAYMENT_LATENCY_SECONDS`` (default 3). At most
  ``PAYMENT_PROVIDER_CONCURRENCY`` run at once (default 1; 0 = no limit); callers beyond it
  wait in arrival order.
- ``PAYMENT_DECLINE_RATE`` and ``PAYMENT_ERROR_RATE`` (0..1) inject declines (402, final) and
  transient errors (503, nothing charged, retry with the same key).
- ``POST /v1/charges`` needs ``Authorization: Bearer <key>`` with the key the sandbox was started
  with (``PAYMENT_PROVIDER_API_KEY``, default ``sk_test_sandbox``, the local settings' default):
  a missing or wrong key is a 401, as at a real provider. The sandbox's own tooling endpoints below
  (stats, ledger, config, reset) are open: they are the tests' witness, not the provider's API.
- ``GET /v1/stats`` is the ledger summary, ``GET /v1/charges`` the ledger itself,
  ``GET/PUT /v1/config`` reads or changes the knobs at run time, ``POST /v1/reset`` clears all.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import logging
import os
import random
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

from sandbox import DEFAULT_API_KEY

log = logging.getLogger("sandbox")


@dataclass
class Config:
    latency_seconds: float = 3.0
    concurrency: int = 1  # 0 = unlimited
    decline_rate: float = 0.0
    error_rate: float = 0.0
    api_key: str = DEFAULT_API_KEY

    @classmethod
    def from_env(cls) -> Config:
        return cls(
            latency_seconds=float(os.environ.get("PAYMENT_LATENCY_SECONDS", 3)),
            concurrency=int(os.environ.get("PAYMENT_PROVIDER_CONCURRENCY", 1)),
            decline_rate=float(os.environ.get("PAYMENT_DECLINE_RATE", 0)),
            error_rate=float(os.environ.get("PAYMENT_ERROR_RATE", 0)),
            api_key=os.environ.get("PAYMENT_PROVIDER_API_KEY") or DEFAULT_API_KEY,
        )

    def public(self) -> dict[str, Any]:
        """The knobs, without the API key."""
        return {k: v for k, v in asdict(self).items() if k != "api_key"}

    def update(self, changes: dict[str, Any]) -> None:
        for name, value in changes.items():
            if name not in self.__dataclass_fields__:
                raise ValueError(f"unknown setting {name!r}")
            kind = type(getattr(self, name))
            value = kind(value)
            if name == "api_key":
                setattr(self, name, value)
                continue
            if value < 0 or (name.endswith("_rate") and value > 1):
                raise ValueError(f"{name} out of range")
            setattr(self, name, value)


@dataclass
class Stats:
    requests: int = 0
    charges: int = 0  # successful charges: money moved
    declines: int = 0
    errors: int = 0  # transient errors answered (nothing charged)
    replays: int = 0  # answers served from the idempotency store
    in_flight: int = 0
    max_in_flight: int = 0
    waiting: int = 0
    max_waiting: int = 0
    charges_per_key: Counter = field(default_factory=Counter)

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        per_key = data.pop("charges_per_key")
        data["keys"] = len(per_key)
        data["keys_charged_more_than_once"] = sum(1 for n in per_key.values() if n > 1)
        return data


class FifoLimiter:
    """At most `limit` holders; waiters are served strictly in arrival order (0 = no limit)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.holders = 0
        self.waiters: list[asyncio.Future[None]] = []

    async def acquire(self) -> None:
        if self.limit == 0 or (self.holders < self.limit and not self.waiters):
            self.holders += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            await waiter  # release() hands its slot over: holders stays counted
        except asyncio.CancelledError:
            if waiter in self.waiters:
                self.waiters.remove(waiter)
            elif waiter.done() and not waiter.cancelled():
                self.release()
            raise

    def resize(self, limit: int) -> None:
        self.limit = limit
        while self.waiters and (limit == 0 or self.holders < limit):
            self.holders += 1
            self.waiters.pop(0).set_result(None)

    def release(self) -> None:
        while self.waiters:
            waiter = self.waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return
        self.holders -= 1


class Provider:
    def __init__(self, config: Config):
        self.config = config
        self.reset()

    def reset(self) -> None:
        self.stats = Stats()
        self.ledger: list[dict[str, Any]] = []
        # key -> (request fingerprint, future of (http status, body))
        self.results: dict[str, tuple[tuple, asyncio.Future[tuple[int, dict]]]] = {}
        self.limiter = FifoLimiter(self.config.concurrency)

    async def charge(self, key: str, request: dict[str, Any]) -> tuple[int, dict, bool]:
        """Return (status, body, replayed)."""
        stats, results = self.stats, self.results  # this epoch's (see _process)
        stats.requests += 1
        fingerprint = (request.get("amount"), request.get("currency"))
        if key in results:
            first_fingerprint, result = results[key]
            if first_fingerprint != fingerprint:
                message = "An idempotency key can only be reused with the parameters it was first used with."
                return 400, _error("idempotency_error", message), False
            status, body = await asyncio.shield(result)
            stats.replays += 1
            return status, body, True
        result = asyncio.get_running_loop().create_future()
        results[key] = (fingerprint, result)
        try:
            status, body = await self._process(key, request)
        except BaseException:
            results.pop(key, None)  # nothing was decided: a retry with this key starts afresh
            result.cancel()
            raise
        if status >= 500:
            results.pop(key, None)  # transient: nothing charged, the same key may try again
        result.set_result((status, body))
        return status, body, False

    async def _process(self, key: str, request: dict[str, Any]) -> tuple[int, dict]:
        # A reset while this charge runs starts a new epoch: the charge must land in the books
        # (and free the limiter slot) it started with, not leak into the fresh ones.
        stats, ledger, limiter = self.stats, self.ledger, self.limiter
        stats.waiting += 1
        stats.max_waiting = max(stats.max_waiting, stats.waiting)
        try:
            await limiter.acquire()
        finally:
            stats.waiting -= 1
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            await asyncio.sleep(self.config.latency_seconds)
            roll = random.random()
            if roll < self.config.error_rate:
                stats.errors += 1
                return 503, _error("api_error", "The provider is temporarily unavailable.")
            if roll < self.config.error_rate + self.config.decline_rate:
                stats.declines += 1
                return 402, _error("card_error", "Your card was declined.", code="card_declined")
            charge = {
                "id": f"ch_{uuid.uuid4().hex[:24]}",
                "object": "charge",
                "status": "succeeded",
                "amount": request["amount"],
                "currency": request["currency"],
                "description": request.get("description", ""),
                "metadata": request.get("metadata", {}),
                "idempotency_key": key,
                "created": time.time(),
            }
            stats.charges += 1
            stats.charges_per_key[key] += 1
            ledger.append(charge)
            return 200, charge
        finally:
            stats.in_flight -= 1
            limiter.release()


def _error(kind: str, message: str, *, code: str | None = None) -> dict:
    return {"error": {"type": kind, "code": code or kind, "message": message}}


def _validate_charge(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "Body must be a JSON object."
    amount = body.get("amount")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        return "amount must be a positive integer (minor units)."
    currency = body.get("currency")
    if not isinstance(currency, str) or len(currency) != 3:
        return "currency must be a three-letter code."
    return None


routes = web.RouteTableDef()
PROVIDER = web.AppKey("provider", Provider)


@routes.post("/v1/charges")
async def create_charge(request: web.Request) -> web.Response:
    provider = request.app[PROVIDER]
    expected = f"Bearer {provider.config.api_key}".encode()
    if not hmac.compare_digest(request.headers.get("Authorization", "").encode(), expected):
        message = (
            "Invalid API key provided." if "Authorization" in request.headers else "No API key provided."
        )
        return web.json_response(_error("authentication_error", message), status=401)
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key or len(key) > 255:
        return web.json_response(
            _error("invalid_request_error", "Idempotency-Key header is required."), status=400
        )
    try:
        body = await request.json()
    except ValueError:
        return web.json_response(_error("invalid_request_error", "Body is not valid JSON."), status=400)
    problem = _validate_charge(body)
    if problem:
        return web.json_response(_error("invalid_request_error", problem), status=400)
    status, payload, replayed = await provider.charge(key, body)
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    return web.json_response(payload, status=status, headers=headers)


@routes.get("/v1/charges")
async def list_charges(request: web.Request) -> web.Response:
    return web.json_response({"data": request.app[PROVIDER].ledger})


@routes.get("/v1/stats")
async def stats(request: web.Request) -> web.Response:
    provider = request.app[PROVIDER]
    return web.json_response({**provider.stats.summary(), "config": provider.config.public()})


@routes.get("/v1/config")
async def get_config(request: web.Request) -> web.Response:
    return web.json_response(request.app[PROVIDER].config.public())


@routes.put("/v1/config")
async def put_config(request: web.Request) -> web.Response:
    provider = request.app[PROVIDER]
    try:
        provider.config.update(await request.json())
    except (ValueError, TypeError) as exc:
        return web.json_response(_error("invalid_request_error", str(exc)), status=400)
    provider.limiter.resize(provider.config.concurrency)
    return web.json_response(provider.config.public())


@routes.post("/v1/reset")
async def reset(request: web.Request) -> web.Response:
    request.app[PROVIDER].reset()
    return web.json_response({"reset": True})


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def make_app(config: Config | None = None) -> web.Application:
    app = web.Application()
    app[PROVIDER] = Provider(config or Config.from_env())
    app.add_routes(routes)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the payment provider sandbox.")
    parser.add_argument("--host", default=os.environ.get("PAYMENT_SANDBOX_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PAYMENT_SANDBOX_PORT", 8001)))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s sandbox %(message)s")
    config = Config.from_env()
    log.info("payment sandbox on %s:%s %s", args.host, args.port, config)
    web.run_app(make_app(config), host=args.host, port=args.port, print=None, access_log=None)
