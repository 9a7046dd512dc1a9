"""The gateway against the real sandbox: every answer becomes a result or one of our exceptions."""

import http.server
import json
import os
import socket
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest

from payments import gateway
from payments.exceptions import (
    PaymentDeclined,
    PaymentInFlight,
    PaymentNotAuthorized,
    PaymentOutcomeUnknown,
    PaymentTimeout,
    PaymentUnavailable,
)


def request(key: str = "gw-1", amount: int = 1234) -> gateway.ChargeRequest:
    return gateway.ChargeRequest(
        amount_minor=amount, currency="USD", idempotency_key=key, description="test", metadata={"k": "v"}
    )


def test_a_charge_returns_a_typed_result(provider):
    result = gateway.charge(request(), timeout=5)

    assert result.amount_minor == 1234
    assert result.currency == "usd"
    assert result.charge_id.startswith("ch_")
    assert result.replayed is False


def test_a_repeat_is_reported_as_a_replay_of_the_same_charge(provider):
    first = gateway.charge(request(), timeout=5)

    second = gateway.charge(request(), timeout=5)

    assert (second.charge_id, second.replayed) == (first.charge_id, True)


def test_a_decline_raises_payment_declined_with_the_providers_message(provider):
    provider.configure(decline_rate=1.0)

    with pytest.raises(PaymentDeclined, match="declined"):
        gateway.charge(request(), timeout=5)


def test_a_provider_error_is_an_unknown_outcome_not_a_failure(provider):
    provider.configure(error_rate=1.0)

    with pytest.raises(PaymentOutcomeUnknown, match="503"):
        gateway.charge(request(), timeout=5)


def test_a_key_still_in_flight_raises_payment_in_flight(provider):
    provider.configure(latency_seconds=1.0, concurrency=0)
    first = threading.Thread(target=lambda: gateway.charge(request(key="gw-409"), timeout=5))
    first.start()
    time.sleep(0.3)

    with pytest.raises(PaymentInFlight, match="409"):
        gateway.charge(request(key="gw-409"), timeout=5)
    first.join()
    assert provider.stats()["charges"] == 1


def test_a_charge_whose_connection_drops_is_an_unknown_outcome(provider):
    provider.configure(lost_answer_rate=1.0)

    with pytest.raises(PaymentOutcomeUnknown) as raised:
        gateway.charge(request(key="gw-lost"), timeout=5)

    assert not isinstance(raised.value, PaymentTimeout)
    assert provider.stats()["charges"] == 1  # it did charge: only the answer was lost


def test_a_dripped_answer_is_cut_off_at_the_wall_clock_deadline(provider):
    """Bytes keep coming, so no per-read timeout fires; the deadline still ends the call."""
    provider.configure(drip_rate=1.0, drip_seconds=4.0, latency_seconds=0.05)
    started = time.monotonic()

    with pytest.raises(PaymentTimeout):
        gateway.charge(request(key="gw-drip"), timeout=1.0)

    assert time.monotonic() - started < 2.0


def test_the_books_tell_whether_a_key_was_charged(provider):
    charged = gateway.charge(request(key="gw-books"), timeout=5)

    found = gateway.find_charge("gw-books", timeout=5)

    assert found is not None and found.charge_id == charged.charge_id
    assert found.idempotency_key == "gw-books" and found.amount_minor == 1234
    assert gateway.find_charge("gw-never-sent", timeout=5) is None


def test_the_books_list_every_charge_of_a_window_across_pages(provider, monkeypatch):
    monkeypatch.setattr(gateway, "LIST_PAGE_SIZE", 2)
    provider.configure(latency_seconds=0.01, concurrency=0)
    since = datetime.now(UTC) - timedelta(seconds=1)
    ids = [gateway.charge(request(key=f"gw-list-{i}"), timeout=5).charge_id for i in range(5)]

    listed = list(gateway.list_charges(created_gte=since, created_lt=datetime.now(UTC), timeout=5))

    assert [charge.charge_id for charge in listed] == ids


def test_a_slow_provider_raises_payment_timeout(provider):
    provider.configure(latency_seconds=1.0)

    with pytest.raises(PaymentTimeout):
        gateway.charge(request(), timeout=0.2)


def test_an_unreachable_provider_raises_payment_unavailable(settings):
    settings.PAYMENT_PROVIDER_URL = "http://127.0.0.1:9"  # discard port: nothing listens

    with pytest.raises(PaymentUnavailable, match="unreachable"):
        gateway.charge(request(), timeout=1)


def test_a_wrong_api_key_raises_payment_not_authorized(provider, settings):
    settings.PAYMENT_PROVIDER_API_KEY = "sk_test_wrong"

    with pytest.raises(PaymentNotAuthorized, match="401"):
        gateway.charge(request(), timeout=5)
    assert provider.stats()["charges"] == 0


class _Forbidden(http.server.BaseHTTPRequestHandler):
    """A provider that refuses every request with a 403 (the sandbox only ever answers 401)."""

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"error": {"message": "no access"}}).encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextmanager
def provider_of_our_own(settings, handler: type[http.server.BaseHTTPRequestHandler]):
    """A hand-written provider on a free loopback port, as the gateway's provider URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.PAYMENT_PROVIDER_URL = f"http://127.0.0.1:{server.server_port}"
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def forbidding_provider(settings):
    with provider_of_our_own(settings, _Forbidden):
        yield


def test_a_403_is_a_configuration_error_too(forbidding_provider):
    with pytest.raises(PaymentNotAuthorized, match=r"403.*no access"):
        gateway.charge(request(), timeout=5)


def test_threads_share_the_process_connections_to_the_provider(provider):
    """One pool for every thread: 20 threads' charges all succeed, and the pool is the same object."""
    pools = set()
    results = []

    def charge(index):
        pools.add(id(gateway._connections()))
        results.append(gateway.charge(request(key=f"gw-thread-{index}"), timeout=5))

    threads = [threading.Thread(target=charge, args=(index,)) for index in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(pools) == 1
    assert len({result.charge_id for result in results}) == 20


def test_a_forked_child_builds_its_own_connections(provider):
    """A child must not reuse the parent's sockets (a prefork pool, a forking server): its charge
    goes through a pool the child built."""
    gateway.charge(request(key="gw-parent"), timeout=5)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: charge, and say whether its pool is a new one
        try:
            result = gateway.charge(request(key="gw-child"), timeout=5)
            os.write(write, f"{gateway._pool[0] == os.getpid()} {result.charge_id}".encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    answer = os.read(read, 200).decode().split()
    os.close(read)

    assert answer[0] == "True"
    assert answer[1].startswith("ch_")


class _DrippingHeaders(http.server.BaseHTTPRequestHandler):
    """A provider that sends its status line and headers a byte every 0.2 s, for ever."""

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        answer = b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 10_000
        try:
            for byte in answer:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:
            pass  # the client gave up

    def log_message(self, *args):
        pass


@pytest.fixture
def dripping_provider(settings):
    with provider_of_our_own(settings, _DrippingHeaders):
        yield


def test_a_provider_dripping_its_headers_is_cut_off_at_the_deadline_too(dripping_provider):
    started = time.monotonic()

    with pytest.raises(PaymentTimeout):
        gateway.charge(request(key="gw-drip-headers"), timeout=1.0)

    assert time.monotonic() - started < 1.8


def test_a_body_dripped_after_a_connection_close_header_is_cut_off_at_the_deadline(settings):
    """http.client drops the connection's socket once a `Connection: close` answer's headers are in;
    the deadline must still reach the socket the body is read from."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer_slowly():
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 100\r\n\r\n")
        try:
            for _ in range(100):
                conn.sendall(b"x")
                time.sleep(0.1)
        except OSError:
            pass  # cut off
        conn.close()

    threading.Thread(target=answer_slowly, daemon=True).start()
    settings.PAYMENT_PROVIDER_URL = f"http://127.0.0.1:{listener.getsockname()[1]}"
    started = time.monotonic()

    with pytest.raises(PaymentTimeout):
        gateway.charge(request(key="gw-drip-body"), timeout=1.0)

    assert time.monotonic() - started < 1.8
    listener.close()


def test_a_call_with_no_time_left_is_not_sent(dripping_provider):
    with pytest.raises(PaymentUnavailable, match="not sent") as raised:
        gateway.charge(request(key="gw-late"), timeout=0)

    assert not isinstance(raised.value, PaymentOutcomeUnknown)  # nothing reached the provider


def test_an_unreadable_200_is_an_unknown_outcome(settings):
    """A proxy's garbage with a 200 says nothing about the money."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer_garbage():
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nnot json!")
        conn.close()

    threading.Thread(target=answer_garbage, daemon=True).start()
    settings.PAYMENT_PROVIDER_URL = f"http://127.0.0.1:{listener.getsockname()[1]}"

    with pytest.raises(PaymentOutcomeUnknown, match="unreadable"):
        gateway.charge(request(key="gw-garbage"), timeout=5)
    listener.close()
