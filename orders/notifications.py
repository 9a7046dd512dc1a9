"""Telling the customer: one email when an order is paid, one when it fails, each at most once.

Sent by the sweeper (`send_pending`, each pass: within SWEEP_INTERVAL_SECONDS of the order ending),
for orders whose final transition has committed, so a rolled-back payment never mails anyone. Not
from the workers: sent after each payment on the charging threads, the claim, the reads, the
templates and the send cost a worker more CPU per order than the charge itself, and the drain
study's η fell by a third at N = 100 (docs/performance.md, "Figures behind the code's comments"). At
most once per order and kind: the send is claimed by inserting an `OrderNotification` row first
(unique per order and kind), so a second sweeper, or a second pass, finds the claim and sends
nothing. A send that raises keeps its claim and is logged: a mail server may have taken the message
before failing, and a second copy of a payment confirmation is worse than a missing one.

Django's email API: the console backend locally, SES in production (django-ses, configured by
the stack), the locmem outbox in tests. The text and HTML bodies are templates in
orders/templates/orders/email/.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.template.loader import render_to_string
from django.utils import timezone

from .models import Order, OrderNotification, OrderStatus

log = logging.getLogger(__name__)

SUBJECTS: dict[str, str] = {
    OrderStatus.PAID: "Your order is paid",
    OrderStatus.FAILED: "Your order could not be paid",
}


# Orders that ended longer ago than this are not mailed (a first deploy does not mail history).
MAIL_WITHIN = timedelta(days=1)
BATCH = 200


def send_pending(now=None) -> int:
    """Mail the customers of orders that ended (paid or failed) and have no email of that kind
    claimed yet, oldest first, up to BATCH a pass; return how many were sent."""
    now = now or timezone.now()
    claimed = OrderNotification.objects.filter(order=OuterRef("pk"), kind=OuterRef("status"))
    ended = (
        Order.objects.filter(status__in=list(SUBJECTS), updated_at__gte=now - MAIL_WITHIN)
        .exclude(Exists(claimed))
        .order_by("updated_at")
        .values_list("id", "status")[:BATCH]
    )
    return sum(send(order_id, status) for order_id, status in ended)


def send(order_id: Any, status: str) -> bool:
    """Mail the customer that the order reached `status` (paid or failed), unless already done.

    Returns whether this call sent it. Never raises: the order's state is already recorded.
    """
    if status not in SUBJECTS:
        return False
    try:
        with transaction.atomic():
            OrderNotification.objects.create(order_id=order_id, kind=status)
    except IntegrityError:
        return False  # claimed before: sent, or tried, once already
    try:
        order = Order.objects.prefetch_related("items").get(pk=order_id)
        message = _message(order, status)
        message.send()
    except Exception:
        log.exception("could not mail order %s %s; not retried", order_id, status,
                      extra={"order_id": str(order_id)})  # fmt: skip
        return False
    OrderNotification.objects.filter(order_id=order_id, kind=status).update(sent=True)
    return True


def _message(order: Order, status: str) -> EmailMultiAlternatives:
    from .transitions import failure_in_words  # the history's plain words for a failure

    context = {
        "order": order,
        "items": list(order.items.all()),
        "url": f"{settings.SHOP_BASE_URL.rstrip('/')}/orders/{order.id}",
        "reason": failure_in_words(order.failure_code, order.failure_reason)
        if status == OrderStatus.FAILED
        else "",
    }
    text = render_to_string(f"orders/email/{status}.txt", context)
    html = render_to_string(f"orders/email/{status}.html", context)
    message = EmailMultiAlternatives(SUBJECTS[status], text, settings.DEFAULT_FROM_EMAIL, [order.email])
    message.attach_alternative(html, "text/html")
    return message
