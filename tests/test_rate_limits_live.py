"""Rate limits hold across web processes: two gunicorn servers (as two hosts) count in one Redis."""

from __future__ import annotations

import httpx
import pytest
from django.core.management import call_command

from devstack.stack import Stack
from tests.fixtures import database_url

pytestmark = pytest.mark.integration

BODY = {"email": "ann@example.com", "items": [{"sku": "travel-mug", "quantity": 1}]}


@pytest.fixture
def two_webs(stack: Stack, transactional_db, payment_queue, inside_a_rate_window):
    call_command("seed_catalogue")
    env = {"DATABASE_URL": database_url(), "CHECKOUT_RATE_LIMIT": "4/min", "ORDER_STATUS_RATE_LIMIT": "0"}
    webs = [stack.start_web(name=f"web-limit-{n}", workers=1, threads=4, **env) for n in range(2)]
    urls = [f"http://127.0.0.1:{w.argv[w.argv.index('--bind') + 1].rsplit(':', 1)[1]}" for w in webs]
    try:
        yield urls
    finally:
        for web in webs:
            web.stop()
            stack.processes.remove(web)


def test_one_client_alternating_between_two_web_servers_gets_one_budget_and_429_with_retry_after(two_webs):
    answers = [httpx.post(f"{two_webs[n % 2]}/api/orders/async", json=BODY, timeout=30) for n in range(8)]

    assert sorted(r.status_code for r in answers) == [202] * 4 + [429] * 4  # not 4 per server
    refused = [r for r in answers if r.status_code == 429]
    assert {r.url.port for r in refused} == {r.url.port for r in answers}  # both servers refused
    for response in refused:
        assert response.json()["code"] == "throttled"
        assert 1 <= int(response.headers["Retry-After"]) <= 60
