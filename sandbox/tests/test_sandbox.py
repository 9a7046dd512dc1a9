"""The sandbox is the tests' independent witness, so its own promises are tested over HTTP."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

CHARGE = {"amount": 1000, "currency": "usd", "description": "test"}


def charge(provider, key: str, body: dict = CHARGE) -> httpx.Response:
    return provider.http.post("/v1/charges", json=body, headers={"Idempotency-Key": key})


def test_the_same_key_returns_the_first_charge_and_never_charges_again(provider):
    first = charge(provider, "k1")
    again = charge(provider, "k1")

    assert first.status_code == again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    stats = provider.stats()
    assert (stats["charges"], stats["replays"]) == (1, 1)


def test_concurrent_requests_with_one_key_make_one_charge(provider):
    provider.configure(latency_seconds=0.3, concurrency=0)

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: charge(provider, "same"), range(8)))

    assert {r.json()["id"] for r in responses} == {responses[0].json()["id"]}
    assert provider.stats()["charges"] == 1
    assert len(provider.ledger()) == 1


def test_a_key_reused_with_different_parameters_is_refused(provider):
    charge(provider, "k2")

    response = charge(provider, "k2", {**CHARGE, "amount": 999})

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "idempotency_error"
    assert provider.stats()["charges"] == 1


def test_a_decline_is_final_for_its_key(provider):
    provider.configure(decline_rate=1.0)
    declined = charge(provider, "k3")
    provider.configure(decline_rate=0.0)

    again = charge(provider, "k3")

    assert declined.status_code == again.status_code == 402
    assert provider.stats()["charges"] == 0


def test_a_transient_error_charges_nothing_and_the_key_may_try_again(provider):
    provider.configure(error_rate=1.0)
    failed = charge(provider, "k4")
    provider.configure(error_rate=0.0)

    retried = charge(provider, "k4")

    assert failed.status_code == 503
    assert retried.status_code == 200
    assert provider.stats()["charges"] == 1


@pytest.mark.parametrize("headers", [{}, {"Idempotency-Key": ""}, {"Idempotency-Key": "x" * 256}])
def test_a_charge_without_an_idempotency_key_is_refused(provider, headers):
    response = provider.http.post("/v1/charges", json=CHARGE, headers=headers)

    assert response.status_code == 400
    assert provider.stats()["charges"] == 0


@pytest.mark.parametrize(
    "body", [{"amount": 0, "currency": "usd"}, {"amount": "10", "currency": "usd"}, {"amount": 10}, [1, 2]]
)
def test_an_invalid_charge_is_refused(provider, body):
    response = provider.http.post("/v1/charges", json=body, headers={"Idempotency-Key": "bad"})

    assert response.status_code == 400
    assert provider.stats()["charges"] == 0


def test_a_limit_of_one_serves_callers_one_at_a_time_in_arrival_order(provider):
    latency = 0.3
    provider.configure(latency_seconds=latency, concurrency=1)
    done: list[tuple[int, float]] = []
    start = time.monotonic()

    def call(i: int) -> None:
        charge(provider, f"fifo-{i}")
        done.append((i, time.monotonic() - start))

    threads = []
    for i in range(4):
        threads.append(threading.Thread(target=call, args=(i,)))
        threads[-1].start()
        time.sleep(0.05)  # a clear arrival order
    for thread in threads:
        thread.join()

    assert [i for i, _ in sorted(done, key=lambda d: d[1])] == [0, 1, 2, 3]
    assert max(t for _, t in done) == pytest.approx(4 * latency, abs=0.25)
    assert provider.stats()["max_in_flight"] == 1


def test_no_limit_runs_charges_side_by_side(provider):
    provider.configure(latency_seconds=0.5, concurrency=0)
    start = time.monotonic()

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda i: charge(provider, f"par-{i}"), range(6)))

    assert time.monotonic() - start < 1.5 * 0.5
    assert provider.stats()["max_in_flight"] == 6


def test_config_rejects_unknown_or_out_of_range_settings(provider):
    assert provider.http.put("/v1/config", json={"nope": 1}).status_code == 400
    assert provider.http.put("/v1/config", json={"decline_rate": 2}).status_code == 400
    assert provider.http.get("/v1/config").json()["decline_rate"] == 0.0


def test_a_charge_still_running_at_a_reset_stays_out_of_the_new_ledger(provider):
    provider.configure(latency_seconds=0.5, concurrency=1)
    late = threading.Thread(target=charge, args=(provider, "before-reset"))
    late.start()
    time.sleep(0.1)

    provider.http.post("/v1/reset").raise_for_status()
    late.join()

    assert provider.ledger() == []
    assert provider.stats()["charges"] == 0
    started = time.monotonic()
    assert charge(provider, "after-reset").status_code == 200
    assert time.monotonic() - started < 0.9  # the new limiter's slot was free, not held by the old charge


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "No API key provided."),
        ({"Authorization": "Bearer sk_test_wrong"}, "Invalid API key provided."),
        ({"Authorization": "sk_test_sandbox"}, "Invalid API key provided."),  # not a bearer token
    ],
)
def test_a_charge_without_the_right_api_key_is_a_401_and_charges_nothing(provider, headers, message):
    anonymous = httpx.Client(base_url=provider.url, timeout=10)

    response = anonymous.post("/v1/charges", json=CHARGE, headers={"Idempotency-Key": "k-auth", **headers})

    assert response.status_code == 401
    assert response.json()["error"] == {
        "type": "authentication_error",
        "code": "authentication_error",
        "message": message,
    }
    assert provider.stats()["charges"] == 0
    assert "api_key" not in provider.stats()["config"]  # the witness endpoints never show the key
