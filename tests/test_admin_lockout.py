"""The admin's login lockout (django-axes) behind the load balancer: one client, not the ALB.

In production every request reaches the web from the ALB, so REMOTE_ADDR is the ALB's address. The
ALB appends the address it saw to X-Forwarded-For; whatever the client sent stays to its left. So
with TRUSTED_PROXY_COUNT = 1 the client is the right-most entry, and a client cannot choose it.
"""

import pytest
from django.contrib.auth import get_user_model
from django.test import RequestFactory

from orders.api.throttling import CheckoutRateThrottle

ALB = "10.0.0.5"
ATTACKER = "203.0.113.7"
COLLEAGUE = "198.51.100.9"
PASSWORD = "a-long-right-password-7"


@pytest.fixture
def behind_the_alb(settings):
    """The production setting, TRUSTED_PROXY_COUNT = 1 (the rate limits and the lockout read it)."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("staff", password=PASSWORD, is_staff=True, is_superuser=True)


@pytest.fixture
def login(client, settings):
    url = f"/{settings.ADMIN_URL}login/"

    def attempt(forwarded_for: str | None, password: str, remote_addr: str = ALB) -> int:
        client.logout()
        headers = {"HTTP_X_FORWARDED_FOR": forwarded_for} if forwarded_for is not None else {}
        response = client.post(
            url, {"username": "staff", "password": password, "next": f"/{settings.ADMIN_URL}"},
            REMOTE_ADDR=remote_addr, **headers,
        )  # fmt: skip
        return response.status_code

    return attempt


LOGGED_IN, WRONG, LOCKED = 302, 200, 429  # the admin redirects on success and shows the form again


def test_five_wrong_passwords_lock_that_client_not_everyone_behind_the_alb(behind_the_alb, staff, login):
    assert [login(ATTACKER, "wrong") for _ in range(5)] == [WRONG] * 4 + [LOCKED]

    assert login(ATTACKER, PASSWORD) == LOCKED  # the right password no longer helps that client
    assert login(COLLEAGUE, PASSWORD) == LOGGED_IN  # another client via the same ALB logs in


def test_a_forged_left_entry_is_ignored(behind_the_alb, staff, login):
    """The client sends "X-Forwarded-For: <forged>"; the ALB appends the address it saw."""
    # A new forged entry on every guess, or one that is no address at all, buys no extra guesses...
    forged = ["192.0.2.1", "192.0.2.2", "unknown", "192.0.2.4, 192.0.2.5", ALB]
    guesses = [login(f"{entry}, {ATTACKER}", "wrong") for entry in forged]
    assert guesses == [WRONG] * 4 + [LOCKED]
    # ...and forging a colleague's address neither escapes the lock nor locks the colleague out.
    assert login(f"{COLLEAGUE}, {ATTACKER}", PASSWORD) == LOCKED
    assert login(COLLEAGUE, PASSWORD) == LOGGED_IN


def test_without_a_proxy_the_client_is_the_peer_and_the_header_is_ignored(staff, login):
    """Locally (TRUSTED_PROXY_COUNT = 0) anyone can write X-Forwarded-For: it counts for nothing."""
    assert [login(f"192.0.2.{n}", "wrong", remote_addr=ATTACKER) for n in range(5)] == [WRONG] * 4 + [LOCKED]
    assert login(COLLEAGUE, PASSWORD, remote_addr=ATTACKER) == LOCKED
    assert login(None, PASSWORD, remote_addr=COLLEAGUE) == LOGGED_IN


@pytest.mark.parametrize("num_proxies", [0, 1, 2])
@pytest.mark.parametrize(
    "forwarded_for",
    [
        None,
        ATTACKER,
        f"{COLLEAGUE}, {ATTACKER}",
        f"192.0.2.1, {COLLEAGUE},{ATTACKER}",
        f"not-an-ip, {ATTACKER}",  # python-ipware (strict) discards such a header: the client becomes the ALB
        "2001:db8::7",
        "not-an-ip",
    ],
)
def test_the_rate_limits_and_the_lockout_see_the_same_client(settings, num_proxies, forwarded_for):
    from axes.helpers import get_client_ip_address

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": num_proxies}
    headers = {"HTTP_X_FORWARDED_FOR": forwarded_for} if forwarded_for is not None else {}
    request = RequestFactory().post("/", REMOTE_ADDR=ALB, **headers)

    rate_limited_as = CheckoutRateThrottle().get_ident(request)
    locked_out_as = get_client_ip_address(request)

    if rate_limited_as.startswith("not-an-ip"):
        # Only a request that bypassed the proxies has no address there; the lockout stores one.
        assert locked_out_as == ALB
    else:
        assert locked_out_as == rate_limited_as


@pytest.mark.integration
def test_production_counts_the_alb_for_the_rate_limits_and_the_lockout():
    from orders.tests.test_checks import manage

    shown = "from django.conf import settings as s; print(s.REST_FRAMEWORK['NUM_PROXIES'])"
    result = manage("shell", "--no-imports", "-c", shown)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1"]  # which the lockout follows (AXES_CLIENT_IP_CALLABLE, base.py)
