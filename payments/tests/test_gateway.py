"""The gateway against the real sandbox: every answer becomes a result or one of our exceptions."""

import http.server
import json
import os
import threading

import pytest

from payments import gateway
from payments.exceptions import PaymentDeclined, PaymentNotAuthorized, PaymentTimeout, PaymentUnavailable


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


def test_a_provider_error_raises_payment_unavailable(provider):
    provider.configure(error_rate=1.0)

    with pytest.raises(PaymentUnavailable, match="503"):
        gateway.charge(request(), timeout=5)


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


@pytest.fixture
def forbidding_provider(settings):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Forbidden)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.PAYMENT_PROVIDER_URL = f"http://127.0.0.1:{server.server_port}"
    yield
    server.shutdown()
    server.server_close()


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
