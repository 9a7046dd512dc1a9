"""The customer's email when an order is paid or fails: after commit, at most once per kind."""

import pytest
from django.core import mail

from orders import notifications, transitions
from orders.models import Order, OrderNotification
from tests.factories import make_order


def order_of(customer: str, product) -> Order:
    order = make_order(product=product)
    Order.objects.filter(pk=order.pk).update(email=customer)
    return order


def claimed(order: Order) -> Order:
    taken = transitions.claim(order.id, lease_seconds=60)
    assert taken is not None
    return taken


@pytest.mark.django_db
def test_a_paid_order_mails_its_customer_once_with_text_and_html(products):
    order = order_of("ann@example.com", products["mug"])
    transitions.mark_paid(order.id, token=claimed(order).claim_token, charge_id="ch_1")
    assert mail.outbox == []  # not on the charging thread: the sweeper's pass mails it
    assert notifications.send_pending() == 1

    (message,) = mail.outbox
    assert message.to == ["ann@example.com"] and message.subject == "Your order is paid"
    assert f"/orders/{order.id}" in message.body and "Total:" in message.body and "Mug" in message.body
    ((html, kind),) = message.alternatives
    assert kind == "text/html" and f"/orders/{order.id}" in html
    assert notifications.send(order.id, "paid") is False  # a second try finds the claim
    assert notifications.send_pending() == 0
    assert len(mail.outbox) == 1
    assert OrderNotification.objects.get(order=order).sent


@pytest.mark.django_db
def test_a_failed_order_says_why_in_plain_words_not_the_providers(products):
    order = order_of("bob@example.com", products["mug"])
    transitions.mark_failed(
        order.id, token=claimed(order).claim_token, reason="card_declined: do_not_honor (api.processor)",
        code="declined",
    )  # fmt: skip
    notifications.send_pending()

    (message,) = mail.outbox
    assert message.subject == "Your order could not be paid"
    assert "payment declined" in message.body
    assert "do_not_honor" not in message.body and "api.processor" not in message.body


@pytest.mark.django_db
def test_orders_still_waiting_or_ended_long_ago_are_not_mailed(products):
    waiting = make_order(product=products["mug"])
    old = make_order(product=products["mug"])
    transitions.mark_paid(old.id, token=claimed(old).claim_token, charge_id="ch_1")
    long_ago = notifications.timezone.now() + notifications.MAIL_WITHIN + notifications.timedelta(minutes=1)

    assert notifications.send_pending(now=long_ago) == 0
    assert mail.outbox == [] and Order.objects.get(pk=waiting.pk).status == "accepted"


@pytest.mark.django_db
def test_a_send_that_raises_keeps_its_claim_and_is_not_retried(products, monkeypatch):
    order = make_order(product=products["mug"])

    def broken(self, fail_silently=False):
        raise ConnectionError("smtp down")

    monkeypatch.setattr("django.core.mail.EmailMultiAlternatives.send", broken)
    assert notifications.send(order.id, "paid") is False
    monkeypatch.undo()
    assert notifications.send(order.id, "paid") is False  # at most once: the claim stays
    assert mail.outbox == [] and not OrderNotification.objects.get(order=order).sent
