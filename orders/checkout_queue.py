"""The sync checkout's queue: admission control in front of a provider that charges C at a time.

A sync checkout charges inside the request. With a provider that takes L seconds a charge and C at
once, the (C+1)th customer's request waits inside gunicorn and the provider, and at the seed's 20
users everyone waits 3, 6, 9 … 30 s and times out. Here a sync checkout is admitted only while the
provider has room; the others are answered at once with a 503 `checkout_queue`, their place in line
and when to retry, and nothing is created or charged for them.

All in one Redis (REDIS_URL, the rate limits' too), so every web process and host shares one line:

- **Leases.** An admitted request holds a lease (a sorted-set member scored by its expiry) from
  before the order is placed until its answer is built; it is released on every outcome, errors
  and timeouts included (`admitted`). A process that dies holding one loses it after
  `lease_seconds()` (the sync payment timeout plus a margin), so a slot is never lost for good.
- **The limit.** At most PAYMENT_PROVIDER_CONCURRENCY (C) leases charge at the provider, plus
  SYNC_CHECKOUT_ON_DECK admitted requests waiting at its door (settings: enough for the 1.5 s the
  head of the line may take to come back, at least C). The ones on deck are why the provider stays
  at C/L: a refused customer comes back on a whole-second Retry-After, so with no one on deck every
  freed slot would idle ~0.5 s of every L; on deck, the next charge starts the moment one ends. It
  costs the admitted customer at most ON_DECK/C x L more (3 s at the defaults).
- **Tickets: FIFO by arrival.** A customer is their Idempotency-Key. Its first refusal takes a
  ticket (INCR); a retry with the same key keeps it. A request is admitted only when fewer live
  tickets are ahead of it than there are free leases, so a newcomer never passes a waiting
  customer. A ticket lapses when its holder does not come back within the Retry-After it was told
  plus SYNC_CHECKOUT_ABANDON_SECONDS: an abandoned place holds up the line at most that long.
- **No key, no place.** A request without an Idempotency-Key cannot be recognised when it comes
  back, so it takes no ticket (one nobody can present again would only hold up the line until it
  lapsed): it is admitted only when nobody waits and a lease is free, else refused like the rest,
  behind everyone. The storefront always sends a key; the refusal tells API clients to send one.

`position` is the number of customers waiting ahead (0: next). `retry_after` is the time the
provider needs to free as many slots as are ahead, (position - free) x L/C, with L the configured
SYNC_CHECKOUT_CHARGE_SECONDS, bounded to 1..SYNC_CHECKOUT_MAX_RETRY_AFTER: the head of the line
retries every second, so it is ready when the slot it waits for frees.

If Redis is unreachable the checkout is admitted (logged), as the rate limits let requests through:
the shop then behaves as it did before the queue rather than refusing everyone.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis
from django.conf import settings

from core.timeouts import LEASE_MARGIN_SECONDS
from observability import metrics

from .exceptions import CheckoutQueued

log = logging.getLogger(__name__)

# KEYS: the line (member → ticket), the tickets' deadlines (member → when it lapses), the leases
# (token → when it expires), the ticket counter. ARGV: now, member ("" = no key), limit, lease
# token, lease expiry, seconds a slot, most seconds to wait, abandon seconds, idle seconds (every
# key expires after that long without a checkout: longer than any lease or place lives).
# Returns {admitted (1/0), customers ahead, retry after}.
ADMIT = """
local now = tonumber(ARGV[1])
for _, key in ipairs(KEYS) do
  redis.call('EXPIRE', key, ARGV[9])
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
for _, lapsed in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do
  redis.call('ZREM', KEYS[1], lapsed)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local free = tonumber(ARGV[3]) - redis.call('ZCARD', KEYS[3])
local member = ARGV[2]
local ahead
if member == '' then
  ahead = redis.call('ZCARD', KEYS[1])
else
  local ticket = redis.call('ZSCORE', KEYS[1], member)
  if not ticket then
    ticket = redis.call('INCR', KEYS[4])
    redis.call('ZADD', KEYS[1], ticket, member)
  end
  ahead = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. ticket)
end
if ahead < free then
  if member ~= '' then
    redis.call('ZREM', KEYS[1], member)
    redis.call('ZREM', KEYS[2], member)
  end
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4])
  return {1, ahead, 0}
end
local wait = math.ceil((ahead - math.max(free, 0)) * tonumber(ARGV[6]))
local retry = math.max(1, math.min(tonumber(ARGV[7]), wait))
if member ~= '' then
  redis.call('ZADD', KEYS[2], now + retry + tonumber(ARGV[8]), member)
end
return {0, ahead, retry}
"""


@dataclass(frozen=True)
class Lease:
    """An admitted sync checkout's hold on the provider; `token` None: admitted without the queue."""

    token: str | None = None


def enabled() -> bool:
    return bool(settings.SYNC_CHECKOUT_QUEUE) and settings.PAYMENT_PROVIDER_CONCURRENCY > 0


def limit() -> int:
    """Admitted sync checkouts at once: the provider's slots plus the ones waiting on deck."""
    return settings.PAYMENT_PROVIDER_CONCURRENCY + settings.SYNC_CHECKOUT_ON_DECK


def lease_seconds() -> int:
    """Longer than any admitted request can live: its charge's timeout, plus placing and recording."""
    return math.ceil(settings.SYNC_PAYMENT_TIMEOUT_SECONDS) + LEASE_MARGIN_SECONDS


def _idle_seconds() -> int:
    """The queue's keys outlive every lease and every place in line by this much without a checkout."""
    return lease_seconds() + settings.SYNC_CHECKOUT_MAX_RETRY_AFTER + settings.SYNC_CHECKOUT_ABANDON_SECONDS


def seconds_per_slot() -> float:
    """How often the provider frees a slot while it is full: L / C."""
    return settings.SYNC_CHECKOUT_CHARGE_SECONDS / settings.PAYMENT_PROVIDER_CONCURRENCY


def customer(key: str | None) -> str:
    """The line's member for an Idempotency-Key ("" for none): a digest, so any key has one size."""
    return hashlib.sha256(key.encode()).hexdigest()[:32] if key else ""


def admit(key: str | None) -> Lease:
    """A lease on the provider for this checkout, or CheckoutQueued with its place and Retry-After."""
    if not enabled():
        return Lease()
    token = uuid.uuid4().hex
    now = _now()
    try:
        admitted, ahead, retry_after = _admit_script()(
            keys=_keys(),
            args=[
                now, customer(key), limit(), token, now + lease_seconds(), seconds_per_slot(),
                settings.SYNC_CHECKOUT_MAX_RETRY_AFTER, settings.SYNC_CHECKOUT_ABANDON_SECONDS,
                _idle_seconds(),
            ],
        )  # fmt: skip
    except redis.RedisError:
        log.warning("sync checkout admitted without its queue: Redis is unavailable", exc_info=True)
        return Lease()
    metrics.sync_checkout_queue("admitted" if admitted else "queued")
    if not admitted:
        raise CheckoutQueued(position=int(ahead), retry_after=int(retry_after), keyed=bool(key))
    return Lease(token)


def release(lease: Lease) -> None:
    """Give the lease back at once; if Redis cannot be told, it expires after `lease_seconds()`."""
    if lease.token is None:
        return
    try:
        _client().zrem(_keys()[2], lease.token)
    except redis.RedisError:
        log.warning("sync checkout lease not released (it expires by itself)", exc_info=True)


@contextmanager
def admitted(key: str | None) -> Iterator[Lease]:
    """Hold a lease while the body runs, released however it ends; CheckoutQueued when refused."""
    lease = admit(key)
    try:
        yield lease
    finally:
        release(lease)


def _now() -> float:
    """Wall-clock seconds: web hosts' clocks agree (NTP) far inside the bounds used (1 s and up)."""
    return time.time()


def _keys() -> list[str]:
    # One hash tag, so that a Redis cluster keeps the four on one node (the script needs them together).
    base = f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:{{sync-checkout-queue}}"
    return [f"{base}:line", f"{base}:deadlines", f"{base}:leases", f"{base}:tickets"]


@functools.cache
def _client() -> redis.Redis:
    """The shop's Redis, failing as fast as the cache does (settings.CACHES)."""
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5)


@functools.cache
def _admit_script():
    return _client().register_script(ADMIT)
