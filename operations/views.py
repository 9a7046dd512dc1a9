"""The operations page in the admin, its JSON variant, and its actions (staff only, POST, confirmed).

Every view is wrapped in `admin.site.admin_view` (config/urls.py): an active staff login, else the
admin's login page. Actions also need the `orders.change_order` permission, take a confirmation page
first (GET shows what will happen, POST with the CSRF token does it), say what happened in a
message, and are recorded in the admin's LogEntry with the staff user (orders also get an
OrderEvent in their history: orders/operations.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError
from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from orders import operations as order_actions
from orders.models import Order
from queues.sqs import redrive_dead_letters

from .selectors import OperationsSnapshot, operations_snapshot

REFRESH_SECONDS = 5
ACTION_PERMISSION = "orders.change_order"


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    height: float
    label: str


CHART_WIDTH, CHART_HEIGHT = 600, 120


def paid_chart(snapshot: OperationsSnapshot) -> dict:
    """The paid-per-minute bars as SVG geometry: drawn by the server, no script, no CDN."""
    series = snapshot.orders.paid_per_minute
    peak = max((n for _, n in series), default=0) or 1
    width = CHART_WIDTH / max(len(series), 1)
    bars = [
        Bar(
            x=round(i * width + 1, 1),
            y=round(CHART_HEIGHT - n / peak * CHART_HEIGHT, 1),
            height=round(n / peak * CHART_HEIGHT, 1),
            label=f"{minute:%H:%M} UTC: {n} paid",
        )
        for i, (minute, n) in enumerate(series)
    ]
    return {"bars": bars, "bar_width": round(max(width - 2, 1), 1), "peak": peak}


def context(request: HttpRequest, **extra) -> dict:
    return {**admin.site.each_context(request), **extra}


@require_GET
def console(request: HttpRequest) -> HttpResponse:
    snapshot = operations_snapshot()
    return TemplateResponse(
        request,
        "operations/console.html",
        context(
            request,
            title="Operations",
            snapshot=snapshot,
            chart=paid_chart(snapshot),
            chart_width=CHART_WIDTH,
            chart_height=CHART_HEIGHT,
            refresh_seconds=REFRESH_SECONDS,
            can_act=request.user.has_perm(ACTION_PERMISSION),
        ),
    )


@require_GET
def snapshot_json(request: HttpRequest) -> JsonResponse:
    response = JsonResponse(operations_snapshot().as_json())
    response["Cache-Control"] = "no-store"
    return response


ORDER_ACTIONS = {
    # name: (the service, what the confirmation says, the button)
    "republish": (
        order_actions.republish,
        "Publish a fresh payment job for this waiting order. A duplicate job is harmless: only one "
        "attempt can claim the order, and the provider key stays the same.",
        "Yes, re-publish it",
    ),
    "retry": (
        order_actions.retry_failed,
        "Move this failed order back to accepted and publish its payment job. Its limited stock is "
        "reserved again (refused if it is gone). After a decline it is charged under a new provider "
        "key; after any other failure under the same key, so a charge that landed is not repeated.",
        "Yes, retry it",
    ),
}


def _user_id(request: HttpRequest) -> int:
    assert request.user.pk is not None  # admin_view: a staff login
    return request.user.pk


def _require_permission(request: HttpRequest) -> None:
    if not request.user.has_perm(ACTION_PERMISSION):
        raise PermissionDenied("Operations actions need the permission to change orders.")


def _order_id(request: HttpRequest) -> uuid.UUID | None:
    raw = (request.POST.get("order") or request.GET.get("order") or "").strip()
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


@require_http_methods(["GET", "POST"])
def order_action(request: HttpRequest, action: str) -> HttpResponse:
    _require_permission(request)
    if action not in ORDER_ACTIONS:
        raise PermissionDenied("Unknown action.")
    service, explanation, button = ORDER_ACTIONS[action]
    order_id = _order_id(request)
    order = Order.objects.filter(pk=order_id).first() if order_id else None
    if order is None:
        messages.error(request, "Give the id (a UUID) of an existing order. Nothing was changed.")
        return redirect("admin-operations")
    if request.method == "GET":
        return TemplateResponse(
            request,
            "operations/confirm.html",
            context(
                request,
                title=f"{button.removeprefix('Yes, ').capitalize()}: order {order.id}?",
                order=order,
                action=action,
                explanation=explanation,
                button=button,
            ),
        )
    try:
        result = service(order.id)
    except order_actions.ActionRefused as exc:
        messages.error(request, str(exc))
        return redirect("admin-operations")
    LogEntry.objects.log_actions(
        _user_id(request), [order], CHANGE, change_message=f"{action}: {result.detail}", single_object=True
    )
    message = f"Order {order.id}: {result.detail}."
    if result.published:
        messages.success(request, message + " Its payment job is on the queue.")
    else:
        messages.warning(request, message + " SQS refused the job; the sweeper will publish it.")
    return redirect(reverse("admin:orders_order_change", args=[order.id]))


@require_http_methods(["GET", "POST"])
def redrive(request: HttpRequest) -> HttpResponse:
    _require_permission(request)
    if request.method == "GET":
        snapshot = operations_snapshot()
        return TemplateResponse(
            request,
            "operations/confirm.html",
            context(
                request,
                title="Redrive the dead-letter queue?",
                action="redrive",
                explanation=(
                    f"Move the dead-lettered messages "
                    f"({snapshot.queue.dead_lettered if snapshot.queue else 'unknown number'}) back to the "
                    "payment queue. Do it once their cause is fixed: a message that still fails comes "
                    "back to the dead-letter queue after SQS_MAX_RECEIVE_COUNT receives."
                ),
                button="Yes, redrive them",
            ),
        )
    try:
        result = redrive_dead_letters()
    except (BotoCoreError, ClientError) as exc:
        messages.error(request, f"SQS did not answer ({type(exc).__name__}); nothing was moved.")
        return redirect("admin-operations")
    if result.method == "native":
        message = f"SQS started moving the dead letters back (StartMessageMoveTask {result.task_handle})."
    else:
        message = f"Moved {result.moved} dead-lettered message(s) back to the payment queue."
    LogEntry.objects.create(
        user_id=_user_id(request),
        action_flag=CHANGE,
        object_repr="dead-letter queue",
        change_message=f"redrive: {message}",
    )
    messages.success(request, message)
    return redirect("admin-operations")
