"""The sandbox is the tests' independent witness, so its own promises are tested over HTTP."""

import itertools
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
import pytest

from sandbox import client as sandbox_client
from sandbox.client import SandboxClient
from sandbox.server import ENVIRONMENT, Config

CHARGE = {"amount": 1000, "currency": "usd", "description": "test"}
IN_USE = {
    "type": "idempotency_error",
    "code": "idempotency_key_in_use",
    "message": (
        "There is currently another in-progress request using this Idempotent Key (that probably means "
        "you submitted twice, and the other request is still going through). Please try again later."
    ),
}
API_ERROR_AFTER_CHARGE = {
    "type": "api_error",
    "code": "api_error",
    "message": "An unexpected error occurred.",
}


def charge(provider, key: str, body: dict = CHARGE) -> httpx.Response:
    return provider.http.post("/v1/charges", json=body, headers={"Idempotency-Key": key})


def at_once(action, count: int) -> list:
    """Run `action(i)` in `count` threads released together."""
    barrier = threading.Barrier(count)

    def run(i: int):
        barrier.wait()
        return action(i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def in_background(action) -> tuple[threading.Thread, list]:
    """Start `action()` in a thread; its result lands in the returned list."""
    result: list = []
    thread = threading.Thread(target=lambda: result.append(action()))
    thread.start()
    return thread, result


# --- Idempotency ---


def test_the_same_key_returns_the_first_charge_and_never_charges_again(provider):
    first = charge(provider, "k1")
    again = charge(provider, "k1")

    assert first.status_code == again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    stats = provider.stats()
    assert (stats["charges"], stats["replays"]) == (1, 1)


def test_concurrent_requests_with_one_key_make_one_charge(provider):
    """By default a key still in flight is a 409, as at a real provider; nothing is stored for it."""
    provider.configure(latency_seconds=0.5, concurrency=0)

    responses = at_once(lambda _: charge(provider, "same"), 8)

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * 7
    conflicts = [r for r in responses if r.status_code == 409]
    assert all(r.json() == {"error": IN_USE} for r in conflicts)
    assert all("Idempotent-Replayed" not in r.headers for r in conflicts)
    (charged,) = [r.json() for r in responses if r.status_code == 200]
    stats = provider.stats()
    assert (stats["charges"], stats["conflicts"], stats["replays"]) == (1, 7, 0)
    assert [c["id"] for c in provider.ledger()] == [charged["id"]]
    # Once the first request is done, the key replays its answer.
    again = charge(provider, "same")
    assert (again.status_code, again.json()["id"]) == (200, charged["id"])
    assert again.headers["Idempotent-Replayed"] == "true"


def test_the_legacy_wait_mode_makes_a_second_request_wait_for_the_first_answer(provider):
    provider.configure(latency_seconds=0.5, concurrency=0, in_flight="wait")

    responses = at_once(lambda _: charge(provider, "same"), 8)

    assert {r.status_code for r in responses} == {200}
    assert {r.json()["id"] for r in responses} == {responses[0].json()["id"]}
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 7
    stats = provider.stats()
    assert (stats["charges"], stats["conflicts"], stats["replays"]) == (1, 0, 7)
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
    assert again.json() == declined.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert declined.json()["error"]["code"] == "card_declined"
    assert provider.stats()["charges"] == 0


def test_a_transient_error_charges_nothing_and_the_key_may_try_again(provider):
    provider.configure(error_rate=1.0)
    failed = charge(provider, "k4")
    provider.configure(error_rate=0.0)

    retried = charge(provider, "k4")

    assert failed.status_code == 503
    assert failed.json()["error"]["type"] == "api_error"
    assert retried.status_code == 200
    assert "Idempotent-Replayed" not in retried.headers
    assert provider.stats()["charges"] == 1


def test_an_expired_key_is_processed_afresh_and_charges_again(provider):
    provider.configure(latency_seconds=0.05, key_ttl_seconds=0.5)
    first = charge(provider, "k-ttl")
    replayed = charge(provider, "k-ttl")
    time.sleep(0.6)

    again = charge(provider, "k-ttl")

    assert replayed.json()["id"] == first.json()["id"]
    assert again.status_code == 200
    assert "Idempotent-Replayed" not in again.headers
    assert again.json()["id"] != first.json()["id"]
    assert [c["id"] for c in provider.lookup("k-ttl")] == [first.json()["id"], again.json()["id"]]
    stats = provider.stats()
    assert (stats["charges"], stats["expired_keys"], stats["keys_charged_more_than_once"]) == (2, 1, 1)


def test_a_ttl_of_zero_keeps_keys_for_ever(provider):
    provider.configure(latency_seconds=0.05, key_ttl_seconds=0)
    first = charge(provider, "k-forever")
    time.sleep(0.3)

    again = charge(provider, "k-forever")

    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert provider.stats()["expired_keys"] == 0


# --- Faults after a charge ---


def test_a_lost_answer_charges_drops_the_connection_and_a_retry_replays_the_charge(provider):
    provider.configure(lost_answer_rate=1.0)

    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        charge(provider, "k-lost")

    (made,) = provider.lookup("k-lost")
    retried = charge(provider, "k-lost")  # the knob is still on: it applies to charges made, not replays
    assert retried.status_code == 200
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert retried.json()["id"] == made["id"]
    stats = provider.stats()
    assert (stats["charges"], stats["lost_answers"], stats["replays"]) == (1, 1, 1)


def test_a_lost_answer_sends_not_a_byte(provider):
    provider.configure(lost_answer_rate=1.0)

    with raw_request(provider, "k-lost-raw") as sock:
        assert sock.recv(1024) == b""  # closed, nothing sent

    assert len(provider.lookup("k-lost-raw")) == 1


def test_an_error_after_a_charge_answers_500_and_replays_it_while_the_lookup_shows_the_charge(provider):
    provider.configure(error_after_charge_rate=1.0)
    failed = charge(provider, "k-500")
    provider.configure(error_after_charge_rate=0.0)

    retried = charge(provider, "k-500")

    assert failed.status_code == retried.status_code == 500
    assert failed.json() == retried.json() == {"error": API_ERROR_AFTER_CHARGE}
    assert retried.headers["Idempotent-Replayed"] == "true"
    (made,) = provider.lookup("k-500")
    assert (made["status"], made["amount"], made["idempotency_key"]) == ("succeeded", 1000, "k-500")
    stats = provider.stats()
    assert (stats["charges"], stats["errors_after_charge"], stats["errors"]) == (1, 1, 0)


class raw_request:
    """A charge sent over a bare socket, to see the answer's bytes as they arrive."""

    def __init__(self, provider, key: str, *, read_timeout: float = 5.0):
        url = urlsplit(provider.url)
        self.sock = socket.create_connection((url.hostname, url.port), timeout=read_timeout)
        body = json.dumps(CHARGE).encode()
        head = (
            f"POST /v1/charges HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Authorization: {provider.http.headers['Authorization']}\r\nIdempotency-Key: {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.sock.sendall(head.encode() + body)

    def __enter__(self) -> socket.socket:
        return self.sock

    def __exit__(self, *exc) -> None:
        self.sock.close()


def test_a_dripped_answer_takes_drip_seconds_while_every_read_arrives_soon(provider):
    latency, drip = 0.2, 1.5
    provider.configure(latency_seconds=latency, drip_rate=1.0, drip_seconds=drip)
    reads: list[tuple[float, bytes]] = []
    start = time.monotonic()

    with raw_request(provider, "k-drip", read_timeout=0.5) as sock:  # a read timeout would raise
        while chunk := sock.recv(65536):
            reads.append((time.monotonic() - start, chunk))

    raw = b"".join(chunk for _, chunk in reads)
    head, body = raw.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")  # the status line was dripped too
    assert len(reads[0][1]) < len(b"HTTP/1.1 200 OK")  # in pieces, from the first byte
    assert reads[0][0] < latency + 0.3  # the first bytes come right after processing...
    assert reads[-1][0] == pytest.approx(latency + drip, abs=0.4)  # ...the last ones drip_seconds later
    assert len(reads) > 20  # a few bytes at a time
    assert max(b[0] - a[0] for a, b in itertools.pairwise(reads)) < 0.3
    assert json.loads(body)["id"] == provider.lookup("k-drip")[0]["id"]
    assert provider.stats()["drips"] == 1


def test_a_client_with_a_short_read_timeout_gets_the_whole_dripped_answer(provider):
    provider.configure(drip_rate=1.0, drip_seconds=1.5)
    patient = httpx.Client(base_url=provider.url, headers=provider.http.headers, timeout=httpx.Timeout(0.5))
    started = time.monotonic()

    response = patient.post("/v1/charges", json=CHARGE, headers={"Idempotency-Key": "k-drip-httpx"})

    assert time.monotonic() - started > 1.5
    assert response.status_code == 200
    assert response.json()["id"] == provider.lookup("k-drip-httpx")[0]["id"]
    replayed = charge(provider, "k-drip-httpx")  # a replay is not dripped
    assert replayed.elapsed.total_seconds() < 0.5
    assert replayed.json()["id"] == response.json()["id"]


def test_a_client_hanging_up_mid_drip_leaves_the_charge_standing(provider):
    provider.configure(drip_rate=1.0, drip_seconds=1.5)

    with raw_request(provider, "k-drip-gone") as sock:
        assert sock.recv(4)  # the answer has started
    time.sleep(0.2)

    assert provider.http.get("/health").status_code == 200
    (made,) = provider.lookup("k-drip-gone")
    provider.configure(drip_rate=0.0)
    retried = charge(provider, "k-drip-gone")
    assert (retried.status_code, retried.json()["id"]) == (200, made["id"])
    assert provider.stats()["charges"] == 1


# --- Timing: slow charges, the provider's own timeout, the concurrency limit ---


def test_a_slow_charge_takes_slow_seconds(provider):
    provider.configure(latency_seconds=0.1, slow_rate=1.0, slow_seconds=0.8)
    started = time.monotonic()
    assert charge(provider, "k-slow").status_code == 200
    slow = time.monotonic() - started

    provider.configure(slow_rate=0.0)
    started = time.monotonic()
    assert charge(provider, "k-quick").status_code == 200
    quick = time.monotonic() - started

    assert slow == pytest.approx(0.8, abs=0.25)
    assert quick == pytest.approx(0.1, abs=0.25)


def test_a_request_waiting_past_the_provider_timeout_is_a_503_that_charges_nothing(provider):
    provider.configure(concurrency=1, slow_rate=1.0, slow_seconds=1.2, request_timeout_seconds=0.5)
    first, first_result = in_background(lambda: charge(provider, "k-holder"))
    time.sleep(0.1)  # the first holds the only slot
    started = time.monotonic()

    waited = charge(provider, "k-waiter")

    waited_for = time.monotonic() - started
    first.join()
    assert waited.status_code == 503
    assert waited.json()["error"]["type"] == "api_error"
    assert waited.json()["error"]["code"] == "timeout"
    assert waited_for == pytest.approx(0.5, abs=0.25)  # not after the slow charge's 1.2 s
    assert first_result[0].status_code == 200  # the holder's own processing is not cut short
    assert provider.lookup("k-waiter") == []
    stats = provider.stats()
    assert (stats["timeouts"], stats["charges"]) == (1, 1)
    provider.configure(slow_rate=0.0)
    retried = charge(provider, "k-waiter")  # the key is free
    assert retried.status_code == 200
    assert "Idempotent-Replayed" not in retried.headers


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


# --- Reading charges ---


@pytest.fixture
def five_charges(provider) -> list[dict]:
    provider.configure(latency_seconds=0.02)
    made = []
    for i in range(5):
        made.append(charge(provider, f"list-{i}", {**CHARGE, "amount": 100 + i}).json())
        time.sleep(0.02)  # distinct `created`
    return made


def test_the_list_pages_in_creation_order(provider, five_charges):
    ids = [c["id"] for c in five_charges]

    first = provider.http.get("/v1/charges", params={"limit": 2}).json()
    second = provider.http.get("/v1/charges", params={"limit": 2, "starting_after": ids[1]}).json()
    last = provider.http.get("/v1/charges", params={"limit": 2, "starting_after": ids[3]}).json()
    everything = provider.http.get("/v1/charges").json()

    assert first["object"] == "list"
    assert ([c["id"] for c in first["data"]], first["has_more"]) == (ids[:2], True)
    assert ([c["id"] for c in second["data"]], second["has_more"]) == (ids[2:4], True)
    assert ([c["id"] for c in last["data"]], last["has_more"]) == (ids[4:], False)
    assert (everything["data"], everything["has_more"]) == (five_charges, False)
    assert set(everything["data"][0]) == {
        "id", "object", "status", "amount", "currency", "description", "metadata", "idempotency_key",
        "created",
    }  # fmt: skip


def test_the_list_filters_by_creation_time_and_by_key(provider, five_charges):
    ids = [c["id"] for c in five_charges]
    window = {"created_gte": five_charges[1]["created"], "created_lt": five_charges[3]["created"]}

    in_window = provider.http.get("/v1/charges", params=window).json()["data"]
    paged = provider.http.get("/v1/charges", params={**window, "limit": 1}).json()
    of_key = provider.http.get("/v1/charges", params={"idempotency_key": "list-2"}).json()["data"]
    of_no_key = provider.http.get("/v1/charges", params={"idempotency_key": "nope"}).json()

    assert [c["id"] for c in in_window] == ids[1:3]
    assert ([c["id"] for c in paged["data"]], paged["has_more"]) == (ids[1:2], True)
    assert [c["id"] for c in of_key] == [ids[2]]
    assert (of_no_key["data"], of_no_key["has_more"]) == ([], False)


def test_the_client_follows_every_page(provider, five_charges, monkeypatch):
    monkeypatch.setattr(sandbox_client, "PAGE_SIZE", 2)
    ids = [c["id"] for c in five_charges]

    assert [c["id"] for c in provider.ledger()] == ids
    since = provider.ledger(created_gte=five_charges[2]["created"])
    until = provider.ledger(created_lt=five_charges[2]["created"])
    assert [c["id"] for c in since] == ids[2:]
    assert [c["id"] for c in until] == ids[:2]
    assert provider.lookup("list-4") == [five_charges[4]]
    assert provider.charges_per_key() == {f"list-{i}": 1 for i in range(5)}


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 1001},
        {"limit": "x"},
        {"created_gte": "yesterday"},
        {"created_lt": "nan"},
        {"starting_after": "ch_nope"},
    ],
)
def test_the_list_refuses_bad_parameters(provider, params):
    response = provider.http.get("/v1/charges", params=params)

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_a_charge_is_read_by_id(provider):
    made = charge(provider, "k-get").json()

    found = provider.http.get(f"/v1/charges/{made['id']}")
    missing = provider.http.get("/v1/charges/ch_nope")

    assert (found.status_code, found.json()) == (200, made)
    assert provider.get_charge(made["id"]) == made
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "invalid_request_error"
    assert missing.json()["error"]["code"] == "resource_missing"
    assert provider.get_charge("ch_nope") is None


# --- Auth, config, reset ---


AUTH_CASES = [
    ({}, "No API key provided."),
    ({"Authorization": "Bearer sk_test_wrong"}, "Invalid API key provided."),
    ({"Authorization": "sk_test_sandbox"}, "Invalid API key provided."),  # not a bearer token
]


@pytest.mark.parametrize(("headers", "message"), AUTH_CASES)
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


@pytest.mark.parametrize(("headers", "message"), AUTH_CASES)
def test_reading_charges_needs_the_api_key_too(provider, headers, message):
    made = charge(provider, "k-read-auth").json()
    anonymous = httpx.Client(base_url=provider.url, timeout=10, headers=headers)

    for path in ("/v1/charges", "/v1/charges?idempotency_key=k-read-auth", f"/v1/charges/{made['id']}"):
        response = anonymous.get(path)
        assert response.status_code == 401
        assert response.json()["error"]["message"] == message
    for path in ("/v1/stats", "/v1/config", "/health"):  # the sandbox's tooling stays open
        assert anonymous.get(path).status_code == 200


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


@pytest.mark.parametrize(
    "change",
    [
        {"nope": 1},
        {"decline_rate": 2},
        {"drip_rate": -0.1},
        {"slow_seconds": -1},
        {"request_timeout_seconds": "soon"},
        {"concurrency": 1.5},
        {"in_flight": "queue"},
        {"key_ttl_seconds": True},
        {"error_rate": 0.5, "lost_answer_rate": 1.5},  # all or nothing: error_rate is not changed either
    ],
)
def test_config_rejects_unknown_or_out_of_range_settings(provider, change):
    before = provider.http.get("/v1/config").json()

    response = provider.http.put("/v1/config", json=change)

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert provider.http.get("/v1/config").json() == before


def test_config_shows_and_changes_every_knob_and_reset_restores_them(provider):
    assert set(SandboxClient.DEFAULTS) == set(Config().public())
    assert provider.http.get("/v1/config").json() == {**SandboxClient.DEFAULTS, "latency_seconds": 0.2}
    changed = {
        "latency_seconds": 0.1, "concurrency": 3, "decline_rate": 0.1, "error_rate": 0.2, "in_flight": "wait",
        "lost_answer_rate": 0.3, "error_after_charge_rate": 0.4, "slow_rate": 0.5, "slow_seconds": 1.0,
        "drip_rate": 0.6, "drip_seconds": 2.0, "key_ttl_seconds": 60.0, "request_timeout_seconds": 30.0,
    }  # fmt: skip

    assert set(changed) == set(SandboxClient.DEFAULTS)
    assert provider.http.put("/v1/config", json=changed).json() == changed
    assert provider.stats()["config"] == changed
    provider.reset()
    assert provider.http.get("/v1/config").json() == {**SandboxClient.DEFAULTS, "latency_seconds": 0.2}


def test_the_client_defaults_are_the_servers():
    assert Config().public() == SandboxClient.DEFAULTS
    assert set(ENVIRONMENT) == set(Config().public()) | {"api_key"}


def test_config_reads_every_knob_from_the_environment(monkeypatch):
    values = {
        "PAYMENT_LATENCY_SECONDS": "0.5", "PAYMENT_PROVIDER_CONCURRENCY": "4", "PAYMENT_DECLINE_RATE": "0.1",
        "PAYMENT_ERROR_RATE": "0.2", "PAYMENT_SANDBOX_IN_FLIGHT": "wait", "PAYMENT_LOST_ANSWER_RATE": "0.3",
        "PAYMENT_ERROR_AFTER_CHARGE_RATE": "0.4", "PAYMENT_SLOW_RATE": "0.5", "PAYMENT_SLOW_SECONDS": "7",
        "PAYMENT_DRIP_RATE": "0.6", "PAYMENT_DRIP_SECONDS": "3", "PAYMENT_KEY_TTL_SECONDS": "0",
        "PAYMENT_PROVIDER_TIMEOUT_SECONDS": "45", "PAYMENT_PROVIDER_API_KEY": "sk_test_other",
    }  # fmt: skip
    for name, value in values.items():
        monkeypatch.setenv(name, value)

    config = Config.from_env()

    assert config == Config(
        latency_seconds=0.5, concurrency=4, decline_rate=0.1, error_rate=0.2, in_flight="wait",
        lost_answer_rate=0.3, error_after_charge_rate=0.4, slow_rate=0.5, slow_seconds=7.0, drip_rate=0.6,
        drip_seconds=3.0, key_ttl_seconds=0.0, request_timeout_seconds=45.0, api_key="sk_test_other",
    )  # fmt: skip
    monkeypatch.setenv("PAYMENT_SANDBOX_IN_FLIGHT", "queue")
    with pytest.raises(ValueError, match="in_flight"):
        Config.from_env()


def test_config_defaults_to_a_real_providers_behaviour(monkeypatch):
    for name in ENVIRONMENT.values():
        monkeypatch.delenv(name, raising=False)

    config = Config.from_env()

    assert config == Config()
    assert (config.in_flight, config.key_ttl_seconds, config.request_timeout_seconds) == (
        "conflict",
        86400,
        90,
    )


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
