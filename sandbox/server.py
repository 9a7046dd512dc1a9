"""The payment provider sandbox: a Stripe-like charges API with the seed's limits and faults.

Run it as its own process: ``python -m sandbox --port 8001``. It does not import Django; the shop
reaches it only over HTTP, through ``payments/gateway.py``. It behaves like a real provider by
default (Stripe's idempotency rules); every fault below is off until its knob is turned.

The provider's API (``Authorization: Bearer <key>`` required, else 401 ``authentication_error``;
the key is ``PAYMENT_PROVIDER_API_KEY``, default ``sk_test_sandbox``, the local settings' default):

- ``POST /v1/charges``: JSON ``amount`` (minor units), ``currency`` (three letters),
  ``description``, ``metadata``, with an ``Idempotency-Key`` header (required, ≤ 255 characters).
  Answers 200 with the charge, 402 ``card_error``/``card_declined`` (final for its key), 503
  ``api_error`` (nothing charged, nothing stored: the key may try again), or one of the faults below.
- Idempotency, per key:

  * A key whose first request has finished replays that request's stored status and body (a 200,
    a 402, or the 500 of an error after a charge) with ``Idempotent-Replayed: true``; it never
    charges again. Only a 503 (transient error, provider timeout) leaves nothing stored.
  * The same key with another ``amount`` or ``currency``: 400 ``idempotency_error``, nothing charged.
  * A key whose first request is still running: **409** ``idempotency_error`` /
    ``idempotency_key_in_use`` (nothing stored, not a replay; stats ``conflicts``), as Stripe answers.
    ``in_flight="wait"`` is the sandbox's old, legacy behaviour instead: the second request waits
    for the first and gets its answer as a replay.
  * A finished key is kept ``key_ttl_seconds`` from its first request's arrival (24 h; 0 = for
    ever); after that it is forgotten and a request with it is processed afresh, charging again
    (stats ``expired_keys``, counted when a request finds its key expired;
    ``keys_charged_more_than_once`` then counts the key).

- ``GET /v1/charges``: the charges made, in creation order, as ``{"object": "list", "data": [...],
  "has_more": bool}``. Query: ``idempotency_key`` (the lookup: only charges made with that key),
  ``created_gte`` / ``created_lt`` (unix seconds, floats), ``limit`` (1..1000, default 100),
  ``starting_after`` (a charge id: the page after it; an unknown id is a 400 ``resource_missing``).
  A charge is ``id``, ``object``, ``status``, ``amount``, ``currency``, ``description``,
  ``metadata``, ``idempotency_key``, ``created``.
- ``GET /v1/charges/{id}``: one charge, or 404 ``invalid_request_error`` / ``resource_missing``.

Timing: each charge holds one of ``concurrency`` slots (0 = no limit; callers beyond it wait in
arrival order) for ``latency_seconds``. A request still waiting for a slot
``request_timeout_seconds`` after it arrived is answered 503 ``api_error`` / ``timeout``: nothing
charged, nothing stored (stats ``timeouts``). So once ``request_timeout_seconds`` plus the
processing time (``latency_seconds``, or ``slow_seconds``) has passed since a request arrived, its
key is settled: charged, declined, or free.

Knobs (``Config``; environment at start, ``GET/PUT /v1/config`` at run time; rates in 0..1,
durations ≥ 0):

=========================  ===================================  =========  ======================
knob                       environment                          default    effect
=========================  ===================================  =========  ======================
latency_seconds            PAYMENT_LATENCY_SECONDS              3          processing time
concurrency                PAYMENT_PROVIDER_CONCURRENCY         1          slots; 0 = no limit
decline_rate               PAYMENT_DECLINE_RATE                 0          402, final
error_rate                 PAYMENT_ERROR_RATE                   0          503 before charging
in_flight                  PAYMENT_SANDBOX_IN_FLIGHT            conflict   or ``wait`` (legacy)
lost_answer_rate           PAYMENT_LOST_ANSWER_RATE             0          charged, no answer
error_after_charge_rate    PAYMENT_ERROR_AFTER_CHARGE_RATE      0          charged, 500 stored
slow_rate                  PAYMENT_SLOW_RATE                    0          ``slow_seconds`` of work
slow_seconds               PAYMENT_SLOW_SECONDS                 5
drip_rate                  PAYMENT_DRIP_RATE                    0          answer dripped
drip_seconds               PAYMENT_DRIP_SECONDS                 10
key_ttl_seconds            PAYMENT_KEY_TTL_SECONDS              86400      0 = keys never expire
request_timeout_seconds    PAYMENT_PROVIDER_TIMEOUT_SECONDS     90         0 = none
=========================  ===================================  =========  ======================

Faults, rolled per request with ``random.random()``: ``slow`` before processing; then one roll
decides error (503) / decline (402) / charge; a charge that was made then rolls, independently:

- lost answer: the charge is stored as the key's result (200), then the connection is aborted
  without a byte of response (stats ``lost_answers``); a retry with the key replays the 200.
- error after charge: the charge is in the ledger, but the answer, and what the key stores, is a
  500 ``api_error`` (stats ``errors_after_charge``); retries replay the 500; only a lookup
  (``GET /v1/charges?idempotency_key=...``) shows the charge.
- drip: the stored answer is written raw (status line, headers, body; ``Connection: close``) to
  the socket a few bytes at a time, evenly over ``drip_seconds`` (a write every 10 ms at most), so
  a per-read socket timeout never fires while the whole answer takes ``drip_seconds`` (stats
  ``drips``). A client that hangs up mid-drip just stops it; the charge stands.

The answer a lost answer or a drip delivers is whatever the key stored (the 500 if an error after
charge was rolled too); a lost answer wins over a drip. None of them applies to replays.

The sandbox's own tooling is open (it is the tests' witness, not the provider's API):
``GET /v1/stats`` (the ledger summary and the config: counters ``requests``, ``charges``,
``declines``, ``errors``, ``replays``, ``conflicts``, ``lost_answers``, ``errors_after_charge``,
``drips``, ``expired_keys``, ``timeouts``; gauges ``in_flight``, ``waiting`` and their maxima;
``keys`` charged and ``keys_charged_more_than_once``), ``GET/PUT /v1/config`` (the knobs, never
the API key; a PUT changes all it names or, with a 400, none), ``POST /v1/reset`` (empty ledger,
keys and stats; charges still running land in the old books), ``GET /health``.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import hmac
import json
import logging
import math
import os
import random
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

from aiohttp import __version__ as aiohttp_version
from aiohttp import web

from sandbox import DEFAULT_API_KEY

log = logging.getLogger("sandbox")

IN_FLIGHT_MODES = ("conflict", "wait")
# Each knob's environment variable.
ENVIRONMENT = {
    "latency_seconds": "PAYMENT_LATENCY_SECONDS",
    "concurrency": "PAYMENT_PROVIDER_CONCURRENCY",
    "decline_rate": "PAYMENT_DECLINE_RATE",
    "error_rate": "PAYMENT_ERROR_RATE",
    "in_flight": "PAYMENT_SANDBOX_IN_FLIGHT",
    "lost_answer_rate": "PAYMENT_LOST_ANSWER_RATE",
    "error_after_charge_rate": "PAYMENT_ERROR_AFTER_CHARGE_RATE",
    "slow_rate": "PAYMENT_SLOW_RATE",
    "slow_seconds": "PAYMENT_SLOW_SECONDS",
    "drip_rate": "PAYMENT_DRIP_RATE",
    "drip_seconds": "PAYMENT_DRIP_SECONDS",
    "key_ttl_seconds": "PAYMENT_KEY_TTL_SECONDS",
    "request_timeout_seconds": "PAYMENT_PROVIDER_TIMEOUT_SECONDS",
    "api_key": "PAYMENT_PROVIDER_API_KEY",
}
IN_USE_MESSAGE = (
    "There is currently another in-progress request using this Idempotent Key (that probably means "
    "you submitted twice, and the other request is still going through). Please try again later."
)
DRIP_TICK_SECONDS = 0.01  # a drip writes at most this often


@dataclass
class Config:
    latency_seconds: float = 3.0
    concurrency: int = 1  # 0 = unlimited
    decline_rate: float = 0.0
    error_rate: float = 0.0
    in_flight: str = "conflict"  # or "wait" (legacy)
    lost_answer_rate: float = 0.0
    error_after_charge_rate: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 5.0
    drip_rate: float = 0.0
    drip_seconds: float = 10.0
    key_ttl_seconds: float = 86400.0  # 0 = keys never expire
    request_timeout_seconds: float = 90.0  # 0 = none
    api_key: str = DEFAULT_API_KEY

    @classmethod
    def from_env(cls) -> Config:
        """The defaults, with every knob whose variable is set (and not empty) in the environment."""
        config = cls()
        config.update({name: os.environ[var] for name, var in ENVIRONMENT.items() if os.environ.get(var)})
        return config

    def public(self) -> dict[str, Any]:
        """The knobs, without the API key."""
        return {k: v for k, v in asdict(self).items() if k != "api_key"}

    def update(self, changes: dict[str, Any]) -> None:
        """Change the knobs, all or none: a ValueError names the first bad one."""
        if not isinstance(changes, dict):
            raise ValueError("settings must be a JSON object")
        checked = {name: _check(name, value) for name, value in changes.items()}
        for name, value in checked.items():
            setattr(self, name, value)


_KINDS = {f.name: f.type for f in fields(Config)}  # "float", "int" or "str" (postponed annotations)


def _check(name: str, value: Any) -> Any:
    kind = _KINDS.get(name)
    if kind is None:
        raise ValueError(f"unknown setting {name!r}")
    if kind == "str":
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string")
        if name == "in_flight" and value not in IN_FLIGHT_MODES:
            raise ValueError(f"in_flight must be one of {', '.join(IN_FLIGHT_MODES)}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{name} must be a number")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number") from None
    if not math.isfinite(number) or number < 0 or (name.endswith("_rate") and number > 1):
        raise ValueError(f"{name} out of range")
    if kind == "int":
        if not number.is_integer():
            raise ValueError(f"{name} must be a whole number")
        return int(number)
    return number


@dataclass
class Stats:
    requests: int = 0
    charges: int = 0  # successful charges: money moved
    declines: int = 0
    errors: int = 0  # transient errors answered (nothing charged)
    replays: int = 0  # answers served from the idempotency store
    conflicts: int = 0  # 409s: the key's first request was still running
    lost_answers: int = 0  # charged, then the connection dropped without an answer
    errors_after_charge: int = 0  # charged, answered (and stored) a 500
    drips: int = 0  # answers dripped over drip_seconds
    expired_keys: int = 0  # finished keys forgotten after key_ttl_seconds
    timeouts: int = 0  # 503s: still waiting for a slot after request_timeout_seconds
    in_flight: int = 0
    max_in_flight: int = 0
    waiting: int = 0
    max_waiting: int = 0
    charges_per_key: Counter = field(default_factory=Counter)

    def summary(self) -> dict[str, Any]:
        # Not asdict's copy of the Counter: it rebuilds a Counter from (key, n) pairs, counting the pairs.
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "charges_per_key"}
        per_key = self.charges_per_key
        data["keys"] = len(per_key)
        data["keys_charged_more_than_once"] = sum(1 for n in per_key.values() if n > 1)
        return data


class FifoLimiter:
    """At most `limit` holders; waiters are served strictly in arrival order (0 = no limit)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.holders = 0
        self.waiters: list[asyncio.Future[None]] = []

    def try_acquire(self) -> bool:
        """Take a slot if one is free now (and nobody waits for it)."""
        if self.limit == 0 or (self.holders < self.limit and not self.waiters):
            self.holders += 1
            return True
        return False

    async def acquire(self) -> None:
        if self.try_acquire():
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


class Ledger:
    """The charges made, in creation order, indexed by id and by idempotency key."""

    def __init__(self) -> None:
        self.charges: list[dict[str, Any]] = []
        self.position: dict[str, int] = {}  # charge id -> index in `charges`
        self.by_key: dict[str, list[int]] = {}  # idempotency key -> indexes, ascending

    def add(self, charge: dict[str, Any]) -> None:
        self.position[charge["id"]] = len(self.charges)
        self.by_key.setdefault(charge["idempotency_key"], []).append(len(self.charges))
        self.charges.append(charge)

    def get(self, charge_id: str) -> dict[str, Any] | None:
        index = self.position.get(charge_id)
        return None if index is None else self.charges[index]

    def page(
        self,
        *,
        key: str | None = None,
        created_gte: float | None = None,
        created_lt: float | None = None,
        limit: int = 100,
        starting_after: str | None = None,
    ) -> tuple[list[dict[str, Any]], bool]:
        """Up to `limit` matching charges after `starting_after` (KeyError if unknown), and has_more."""
        after = -1 if starting_after is None else self.position[starting_after]
        if key is None:
            indexes: Any = range(after + 1, len(self.charges))
        else:
            of_key = self.by_key.get(key, [])
            indexes = of_key[bisect.bisect_right(of_key, after) :]
        found: list[dict[str, Any]] = []
        for index in indexes:
            charge = self.charges[index]
            if created_gte is not None and charge["created"] < created_gte:
                continue
            if created_lt is not None and charge["created"] >= created_lt:
                continue
            if len(found) == limit:
                return found, True
            found.append(charge)
        return found, False


@dataclass
class Entry:
    """An idempotency key's first request: what it asked, when it arrived, and its answer."""

    fingerprint: tuple
    arrived: float  # time.monotonic()
    result: asyncio.Future[tuple[int, dict]]


@dataclass(frozen=True)
class Outcome:
    status: int
    body: dict
    replayed: bool = False
    stored: bool = True  # False: nothing kept for the key (it may try again)
    delivery: str = "answer"  # or "lost" (abort the connection) or "drip"
    drip_seconds: float = 0.0


class Provider:
    def __init__(self, config: Config):
        self.config = config
        self.reset()

    def reset(self) -> None:
        self.stats = Stats()
        self.ledger = Ledger()
        self.results: dict[str, Entry] = {}
        self.limiter = FifoLimiter(self.config.concurrency)

    async def charge(self, key: str, request: dict[str, Any], *, arrived: float | None = None) -> Outcome:
        """Charge once per key (see the module's docstring); `arrived` is the request's monotonic time."""
        arrived = time.monotonic() if arrived is None else arrived
        stats, results = self.stats, self.results  # this epoch's (see _process)
        stats.requests += 1
        fingerprint = (request.get("amount"), request.get("currency"))
        entry = results.get(key)
        if entry is not None and entry.result.done() and self._expired(entry):
            del results[key]
            stats.expired_keys += 1
            entry = None
        if entry is not None:
            if entry.fingerprint != fingerprint:
                message = "An idempotency key can only be reused with the parameters it was first used with."
                return Outcome(400, _error("idempotency_error", message), stored=False)
            if not entry.result.done():
                if self.config.in_flight == "conflict":
                    stats.conflicts += 1
                    body = _error("idempotency_error", IN_USE_MESSAGE, code="idempotency_key_in_use")
                    return Outcome(409, body, stored=False)
                status, body = await asyncio.shield(entry.result)  # "wait": the legacy mode
            else:
                status, body = entry.result.result()
            stats.replays += 1
            return Outcome(status, body, replayed=True)
        entry = Entry(fingerprint, arrived, asyncio.get_running_loop().create_future())
        results[key] = entry
        try:
            outcome = await self._process(key, request, arrived)
        except BaseException:
            if results.get(key) is entry:
                del results[key]  # nothing was decided: a retry with this key starts afresh
            entry.result.cancel()
            raise
        if not outcome.stored and results.get(key) is entry:
            del results[key]  # transient: nothing charged, the same key may try again
        entry.result.set_result((outcome.status, outcome.body))
        return outcome

    def _expired(self, entry: Entry) -> bool:
        ttl = self.config.key_ttl_seconds
        return ttl > 0 and time.monotonic() - entry.arrived >= ttl

    async def _process(self, key: str, request: dict[str, Any], arrived: float) -> Outcome:
        # A reset while this charge runs starts a new epoch: the charge must land in the books
        # (and free the limiter slot) it started with, not leak into the fresh ones.
        stats, ledger, limiter, config = self.stats, self.ledger, self.limiter, self.config
        stats.waiting += 1
        stats.max_waiting = max(stats.max_waiting, stats.waiting)
        try:
            timeout = config.request_timeout_seconds
            if limiter.try_acquire():
                pass
            elif timeout > 0:
                remaining = arrived + timeout - time.monotonic()
                await asyncio.wait_for(limiter.acquire(), timeout=max(remaining, 0))
            else:
                await limiter.acquire()
        except TimeoutError:
            stats.timeouts += 1
            message = f"The request timed out after {timeout:g}s waiting to be processed. Please retry."
            return Outcome(503, _error("api_error", message, code="timeout"), stored=False)
        finally:
            stats.waiting -= 1
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            slow = random.random() < config.slow_rate
            await asyncio.sleep(config.slow_seconds if slow else config.latency_seconds)
            roll = random.random()
            if roll < config.error_rate:
                stats.errors += 1
                message = "The provider is temporarily unavailable."
                return Outcome(503, _error("api_error", message), stored=False)
            if roll < config.error_rate + config.decline_rate:
                stats.declines += 1
                return Outcome(402, _error("card_error", "Your card was declined.", code="card_declined"))
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
            ledger.add(charge)
            # Faults of a charge made, each rolled on its own.
            lost = random.random() < config.lost_answer_rate
            error_after = random.random() < config.error_after_charge_rate
            drip = random.random() < config.drip_rate
            status, body = 200, charge
            if error_after:
                stats.errors_after_charge += 1
                status, body = 500, _error("api_error", "An unexpected error occurred.")
            if lost:
                stats.lost_answers += 1
                return Outcome(status, body, delivery="lost")
            if drip:
                stats.drips += 1
                return Outcome(status, body, delivery="drip", drip_seconds=config.drip_seconds)
            return Outcome(status, body)
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


class AlreadyAnswered(web.StreamResponse):
    """What a handler returns once it answered on the socket itself (or dropped it): aiohttp must
    write nothing more, and the connection is not kept alive."""

    def __init__(self, status: int) -> None:
        super().__init__(status=status)
        self.force_close()

    async def prepare(self, request: web.BaseRequest) -> None:
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None


def _raw_response(request: web.Request, status: int, body: dict, headers: dict[str, str]) -> bytes:
    """The whole HTTP response, as aiohttp's json_response would put it on the wire."""
    payload = json.dumps(body).encode()
    lines = [
        f"HTTP/{request.version.major}.{request.version.minor} {status} {HTTPStatus(status).phrase}",
        "Content-Type: application/json; charset=utf-8",
        f"Content-Length: {len(payload)}",
        f"Date: {formatdate(usegmt=True)}",
        f"Server: Python aiohttp/{aiohttp_version} sandbox",
        "Connection: close",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


async def _drip(request: web.Request, raw: bytes, seconds: float) -> None:
    """Write `raw` in even slices, the first now and the last `seconds` later; then close."""
    loop = asyncio.get_running_loop()
    steps = max(1, min(len(raw), math.ceil(seconds / DRIP_TICK_SECONDS)))
    start = loop.time()
    for step in range(steps):
        if step:
            await asyncio.sleep(max(0.0, start + seconds * step / (steps - 1) - loop.time()))
        transport = request.transport
        if transport is None or transport.is_closing():
            log.info(
                "drip stopped: the client hung up after %d of %d bytes", len(raw) * step // steps, len(raw)
            )
            return
        transport.write(raw[len(raw) * step // steps : len(raw) * (step + 1) // steps])
        if step == steps - 1:
            transport.close()  # after the buffer is flushed: the answer said Connection: close


def _unauthorized(request: web.Request) -> web.Response | None:
    """A 401 unless the request carries the provider's API key as a bearer token."""
    expected = f"Bearer {request.app[PROVIDER].config.api_key}".encode()
    if hmac.compare_digest(request.headers.get("Authorization", "").encode(), expected):
        return None
    message = "Invalid API key provided." if "Authorization" in request.headers else "No API key provided."
    return web.json_response(_error("authentication_error", message), status=401)


def _invalid(message: str, *, code: str | None = None, status: int = 400) -> web.Response:
    return web.json_response(_error("invalid_request_error", message, code=code), status=status)


routes = web.RouteTableDef()
PROVIDER = web.AppKey("provider", Provider)


@routes.post("/v1/charges")
async def create_charge(request: web.Request) -> web.StreamResponse:
    arrived = time.monotonic()
    provider = request.app[PROVIDER]
    if refused := _unauthorized(request):
        return refused
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key or len(key) > 255:
        return _invalid("Idempotency-Key header is required.")
    try:
        body = await request.json()
    except ValueError:
        return _invalid("Body is not valid JSON.")
    problem = _validate_charge(body)
    if problem:
        return _invalid(problem)
    outcome = await provider.charge(key, body, arrived=arrived)
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
    if outcome.delivery == "lost":
        if request.transport is not None:
            request.transport.abort()  # not a byte of the answer
        return AlreadyAnswered(outcome.status)
    if outcome.delivery == "drip":
        raw = _raw_response(request, outcome.status, outcome.body, headers)
        await _drip(request, raw, outcome.drip_seconds)
        return AlreadyAnswered(outcome.status)
    return web.json_response(outcome.body, status=outcome.status, headers=headers)


def _float_param(request: web.Request, name: str) -> float | None:
    value = request.query.get(name)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number (unix seconds).") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a number (unix seconds).")
    return number


def _limit_param(request: web.Request) -> int:
    value = request.query.get("limit", "100")
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 1000:
        raise ValueError("limit must be an integer from 1 to 1000.")
    return int(value)


@routes.get("/v1/charges")
async def list_charges(request: web.Request) -> web.Response:
    if refused := _unauthorized(request):
        return refused
    ledger = request.app[PROVIDER].ledger
    try:
        created_gte = _float_param(request, "created_gte")
        created_lt = _float_param(request, "created_lt")
        limit = _limit_param(request)
    except ValueError as exc:
        return _invalid(str(exc))
    starting_after = request.query.get("starting_after")
    try:
        data, has_more = ledger.page(
            key=request.query.get("idempotency_key"),
            created_gte=created_gte,
            created_lt=created_lt,
            limit=limit,
            starting_after=starting_after,
        )
    except KeyError:
        return _invalid(f"No such charge: '{starting_after}'", code="resource_missing")
    return web.json_response({"object": "list", "data": data, "has_more": has_more})


@routes.get("/v1/charges/{charge_id}")
async def get_charge(request: web.Request) -> web.Response:
    if refused := _unauthorized(request):
        return refused
    charge_id = request.match_info["charge_id"]
    charge = request.app[PROVIDER].ledger.get(charge_id)
    if charge is None:
        return _invalid(f"No such charge: '{charge_id}'", code="resource_missing", status=404)
    return web.json_response(charge)


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
        return _invalid(str(exc))
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
    log.info("payment sandbox on %s:%s %s", args.host, args.port, config.public())
    web.run_app(make_app(config), host=args.host, port=args.port, print=None, access_log=None)
