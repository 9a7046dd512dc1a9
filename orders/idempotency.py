"""Idempotent checkout: the same `Idempotency-Key` with the same body gets the first answer.

A double-clicked checkout or a client retrying after a dropped connection creates one order.
Keys are scoped per endpoint and kept for IDEMPOTENCY_KEY_TTL_SECONDS (24 h by default).

The key is bound to its order before the order exists: reserving the key chooses the id the order
will be placed under (`IdempotencyKey.order_uuid`). Whatever fails afterwards (the database
between the charge and its record, the process, the answer on its way back), a retry with the key
either replays the stored answer or resumes that same order; it never places a second one. A key is
forgotten after a failure only while no order has its id (`abandon`).

The request holding the key is fenced by its lock: `finish` writes only if the key is still locked
by this request, so a request that outlived its lock (IDEMPOTENCY_LOCK_SECONDS) cannot overwrite
the answer of the retry that took over.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from observability import metrics

from .exceptions import IdempotencyKeyInUse, IdempotencyKeyReused, InvalidIdempotencyKey
from .models import IdempotencyKey, Order

MAX_KEY_LENGTH = 255
# Printable ASCII with no space at either end: what the OpenAPI schema promises to accept (a UUID,
# a ULID, a random token). Found by schemathesis: control characters and Latin-1 bytes used to pass.
KEY_PATTERN = re.compile(r"[!-~]([ -~]*[!-~])?")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: Any


@dataclass(frozen=True)
class Reservation:
    """This request holds the key: place (or resume) the order `order_id`."""

    scope: str
    key: str
    order_id: uuid.UUID
    locked_until: datetime
    resumed: bool  # an earlier request with the key died holding it: its order may exist


def fingerprint(data: Any) -> str:
    """Hash a request body so that equal JSON (whatever its key order) gives equal prints."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not KEY_PATTERN.fullmatch(key):
        raise InvalidIdempotencyKey(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters, e.g. a UUID."
        )
    return key


def begin(scope: str, key: str, print_: str) -> StoredResponse | Reservation:
    """Reserve the key for this request, or return the response a finished request stored.

    Raises IdempotencyKeyReused for a different body and IdempotencyKeyInUse while the first
    request with the key is still running.
    """
    now = timezone.now()

    def fresh() -> dict:
        return {
            "fingerprint": print_,
            "state": IdempotencyKey.State.IN_PROGRESS,
            "response_status": None,
            "response_body": None,
            "order": None,
            "order_uuid": uuid.uuid4(),
            "locked_until": now + timedelta(seconds=settings.IDEMPOTENCY_LOCK_SECONDS),
            "expires_at": now + timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS),
        }

    values = fresh()
    try:
        with transaction.atomic():
            IdempotencyKey.objects.create(scope=scope, key=key, **values)
        return Reservation(scope, key, values["order_uuid"], values["locked_until"], resumed=False)
    except IntegrityError:
        pass  # somebody used the key before

    record = IdempotencyKey.objects.get(scope=scope, key=key)
    keys = IdempotencyKey.objects.filter(pk=record.pk)
    if record.expires_at <= now:
        values = fresh()
        if keys.filter(expires_at__lte=now).update(**values):
            # An expired key starts afresh, with a new order.
            return Reservation(scope, key, values["order_uuid"], values["locked_until"], resumed=False)
        record.refresh_from_db()
    if record.fingerprint != print_:
        raise IdempotencyKeyReused("This Idempotency-Key was used with a different request body.")
    if record.state == IdempotencyKey.State.DONE and record.response_status is not None:
        metrics.idempotent_replay(scope)
        return StoredResponse(status=record.response_status, body=record.response_body)
    locked_until = now + timedelta(seconds=settings.IDEMPOTENCY_LOCK_SECONDS)
    if record.locked_until <= now and keys.filter(
        state=record.state, locked_until=record.locked_until
    ).update(locked_until=locked_until):
        # The first request died holding the key; this one takes over, and its order if it was placed.
        order_id = record.order_uuid or uuid.uuid4()
        if record.order_uuid is None:  # a key reserved before keys chose their order's id
            keys.update(order_uuid=order_id)
        return Reservation(scope, key, order_id, locked_until, resumed=True)
    raise IdempotencyKeyInUse("A request with this Idempotency-Key is still in progress; retry shortly.")


def finish(reservation: Reservation, response: StoredResponse, *, order_id: Any = None) -> bool:
    """Store the answer for replays, if this request still holds the key; False if it lost it."""
    stored = IdempotencyKey.objects.filter(
        scope=reservation.scope,
        key=reservation.key,
        state=IdempotencyKey.State.IN_PROGRESS,
        locked_until=reservation.locked_until,
    ).update(
        state=IdempotencyKey.State.DONE,
        response_status=response.status,
        response_body=response.body,
        order_id=order_id,
    )
    if not stored:
        log.warning(
            "Idempotency-Key %s/%s was taken over before this request finished; its answer is not stored",
            reservation.scope,
            reservation.key,
        )
    return bool(stored)


def abandon(reservation: Reservation) -> None:
    """After a failure the client should retry (a 5xx): forget the key if no order was placed under
    it, so the retry runs afresh; else keep it bound to that order and unlock it, so the retry
    resumes the order at once instead of waiting out the lock."""
    placed = Order.objects.filter(pk=OuterRef("order_uuid"))
    ours = IdempotencyKey.objects.filter(
        scope=reservation.scope,
        key=reservation.key,
        state=IdempotencyKey.State.IN_PROGRESS,
        locked_until=reservation.locked_until,
    )
    try:
        ours.filter(~Exists(placed)).delete()
        ours.update(locked_until=timezone.now())
    except DatabaseError:
        # The database is what failed; the key's lock runs out after IDEMPOTENCY_LOCK_SECONDS.
        log.warning(
            "could not release Idempotency-Key %s/%s", reservation.scope, reservation.key, exc_info=True
        )


def purge_expired() -> int:
    return IdempotencyKey.objects.filter(expires_at__lte=timezone.now()).delete()[0]
