"""Talk to the sandbox: its knobs, its ledger (the independent witness), and its lookups."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx

from sandbox import DEFAULT_API_KEY

# Every knob of sandbox.server.Config with its default (the API key aside): reset() restores them all.
DEFAULTS: dict[str, Any] = {
    "latency_seconds": 3.0,
    "concurrency": 1,
    "decline_rate": 0.0,
    "error_rate": 0.0,
    "in_flight": "conflict",
    "lost_answer_rate": 0.0,
    "error_after_charge_rate": 0.0,
    "slow_rate": 0.0,
    "slow_seconds": 5.0,
    "drip_rate": 0.0,
    "drip_seconds": 10.0,
    "key_ttl_seconds": 86400.0,
    "request_timeout_seconds": 90.0,
}
PAGE_SIZE = 1000  # the provider's largest page


class SandboxClient:
    DEFAULTS = DEFAULTS

    def __init__(self, url: str, *, defaults: dict | None = None, api_key: str | None = None):
        self.url = url
        # The key the sandbox started with (its environment's, as the shop's settings have it).
        api_key = api_key or os.environ.get("PAYMENT_PROVIDER_API_KEY") or DEFAULT_API_KEY
        self.defaults = {**self.DEFAULTS, "api_key": api_key, **(defaults or {})}
        # `http` speaks to the sandbox as the shop does: with the API key.
        self.http = httpx.Client(base_url=url, timeout=10, headers={"Authorization": f"Bearer {api_key}"})

    def configure(self, **knobs) -> None:
        self.http.put("/v1/config", json=knobs).raise_for_status()

    def reset(self, **knobs) -> None:
        """Restore every default (then `knobs`) and start an empty ledger."""
        self.configure(**{**self.defaults, **knobs})
        self.http.post("/v1/reset").raise_for_status()

    def stats(self) -> dict:
        return self.http.get("/v1/stats").raise_for_status().json()

    def iter_charges(self, **params: Any) -> Iterator[dict]:
        """Every charge matching `params` (GET /v1/charges' filters), in creation order, page by page."""
        params = {k: v for k, v in params.items() if v is not None}
        params.setdefault("limit", PAGE_SIZE)
        while True:
            page = self.http.get("/v1/charges", params=params).raise_for_status().json()
            yield from page["data"]
            if not page["has_more"] or not page["data"]:
                return
            params["starting_after"] = page["data"][-1]["id"]

    def ledger(self, created_gte: float | None = None, created_lt: float | None = None) -> list[dict]:
        """All the charges made (since the last reset), optionally within [created_gte, created_lt)."""
        return list(self.iter_charges(created_gte=created_gte, created_lt=created_lt))

    def lookup(self, key: str) -> list[dict]:
        """The charges made with idempotency key `key` (more than one only if it expired between)."""
        return list(self.iter_charges(idempotency_key=key))

    def get_charge(self, charge_id: str) -> dict | None:
        """One charge by id, or None if the provider has none."""
        response = self.http.get(f"/v1/charges/{charge_id}")
        if response.status_code == 404:
            return None
        return response.raise_for_status().json()

    def charges_per_key(self) -> Counter:
        return Counter(charge["idempotency_key"] for charge in self.ledger())
