"""The gateway against the real sandbox: every answer becomes a result or one of our exceptions."""

import httpx
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


def test_a_403_is_a_configuration_error_too(monkeypatch):
    forbidden = httpx.Client(
        base_url="http://provider.test",
        transport=httpx.MockTransport(
            lambda r: httpx.Response(403, json={"error": {"message": "no access"}})
        ),
    )
    monkeypatch.setattr(gateway, "_client", lambda: forbidden)

    with pytest.raises(PaymentNotAuthorized, match="403"):
        gateway.charge(request(), timeout=5)
