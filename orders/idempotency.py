"""Idempotent checkout: the same `Idempotency-Key` with the same body gets the first answer.

A double-clicked checkout or a client retrying after a dropped connection creates one order.
Keys are scoped per endpoint and kept for IDEMPOTENCY_KEY_TTL_SECONDS (24 h by default).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from observability import metrics

from .exceptions import IdempotencyKeyInUse, IdempotencyKeyReused, InvalidIdempotencyKey
from .models import IdempotencyKey

MAX_KEY_LENGTH = 255
# Printable ASCII with no space at either end: what the OpenAPI schema promises to accept (a UUID,
# a ULID, a random token). Found by schemathesis: control characters and Latin-1 bytes used to pass.
KEY_PATTERN = re.compile(r"[!-~]([ -~]*[!-~])?")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: Any


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


def begin(scope: str, key: str, print_: str) -> StoredResponse | None:
    """Reserve the key for this request, or return the response a finished request stored.

    Raises IdempotencyKeyReused for a different body and IdempotencyKeyInUse while the first
    request with the key is still running.
    """
    now = timezone.now()
    fresh = {
        "fingerprint": print_,
        "state": IdempotencyKey.State.IN_PROGRESS,
        "response_status": None,
        "response_body": None,
        "order": None,
        "locked_until": now + timedelta(seconds=settings.IDEMPOTENCY_LOCK_SECONDS),
        "expires_at": now + timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS),
    }
    try:
        with transaction.atomic():
            IdempotencyKey.objects.create(scope=scope, key=key, **fresh)
        return None
    except IntegrityError:
        pass  # somebody used the key before

    record = IdempotencyKey.objects.get(scope=scope, key=key)
    keys = IdempotencyKey.objects.filter(pk=record.pk)
    if record.expires_at <= now:
        if keys.filter(expires_at__lte=now).update(**fresh):
            return None  # an expired key starts afresh
        record.refresh_from_db()
    if record.fingerprint != print_:
        raise IdempotencyKeyReused("This Idempotency-Key was used with a different request body.")
    if record.state == IdempotencyKey.State.DONE and record.response_status is not None:
        metrics.idempotent_replay(scope)
        return StoredResponse(status=record.response_status, body=record.response_body)
    if record.locked_until <= now and keys.filter(
        state=record.state, locked_until=record.locked_until
    ).update(locked_until=fresh["locked_until"]):
        return None  # the first request died holding the key; this one takes over
    raise IdempotencyKeyInUse("A request with this Idempotency-Key is still in progress; retry shortly.")


def finish(scope: str, key: str, response: StoredResponse, *, order_id: Any = None) -> None:
    IdempotencyKey.objects.filter(scope=scope, key=key).update(
        state=IdempotencyKey.State.DONE,
        response_status=response.status,
        response_body=response.body,
        order_id=order_id,
    )


def abandon(scope: str, key: str) -> None:
    """Forget the key after a failure the client should retry (a 5xx): the retry runs afresh."""
    try:
        IdempotencyKey.objects.filter(scope=scope, key=key, state=IdempotencyKey.State.IN_PROGRESS).delete()
    except DatabaseError:
        # The database is what failed; the key's lock runs out after IDEMPOTENCY_LOCK_SECONDS.
        log.warning("could not release Idempotency-Key %s/%s", scope, key, exc_info=True)


def purge_expired() -> int:
    return IdempotencyKey.objects.filter(expires_at__lte=timezone.now()).delete()[0]
