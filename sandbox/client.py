"""Talk to the sandbox's own endpoints: its knobs and its ledger (the independent witness)."""

from __future__ import annotations

import os
from collections import Counter

import httpx

from sandbox import DEFAULT_API_KEY

DEFAULTS = {"latency_seconds": 3.0, "concurrency": 1, "decline_rate": 0.0, "error_rate": 0.0}


class SandboxClient:
    def __init__(self, url: str, *, defaults: dict | None = None, api_key: str | None = None):
        self.url = url
        # The key the sandbox started with (its environment's, as the shop's settings have it).
        api_key = api_key or os.environ.get("PAYMENT_PROVIDER_API_KEY") or DEFAULT_API_KEY
        self.defaults = {**DEFAULTS, "api_key": api_key, **(defaults or {})}
        # `http` speaks to the sandbox as the shop does: with the API key.
        self.http = httpx.Client(base_url=url, timeout=10, headers={"Authorization": f"Bearer {api_key}"})

    def configure(self, **knobs) -> None:
        self.http.put("/v1/config", json=knobs).raise_for_status()

    def reset(self, **knobs) -> None:
        """Restore the defaults (then `knobs`) and start an empty ledger."""
        self.configure(**{**self.defaults, **knobs})
        self.http.post("/v1/reset").raise_for_status()

    def stats(self) -> dict:
        return self.http.get("/v1/stats").raise_for_status().json()

    def ledger(self) -> list[dict]:
        return self.http.get("/v1/charges").raise_for_status().json()["data"]

    def charges_per_key(self) -> Counter:
        return Counter(charge["idempotency_key"] for charge in self.ledger())
