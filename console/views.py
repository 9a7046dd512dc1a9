"""The operations page in the admin, its JSON variant, and its actions (staff only, POST, confirmed).

Every view is wrapped in `admin.site.admin_view` (config/urls.py): an active staff login, else the
admin's login page. Actions also need the `orders.change_order` permission, take a confirmation page
first (GET shows what will happen, POST with the CSRF token does it), say what happened in a
message, and are recorded in the admin's LogEntry with the staff user (orders also get an
OrderEvent in their history: orders/operations.py). The reconciliation page is its own
confirmation: GET is the dry run, POST repairs what it listed as repairable.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from botocore.exceptions import BotoCoreError, ClientError
from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from orders import operations as order_actions
from orders.models import Order
from orders.reconciliation import KINDS, REPAIRABLE, LedgerUnavailable, Reconciliation, reconcile
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
        "console/console.html",
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
            "console/confirm.html",
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
        messages.warning(request, message + " SQS refused the job; the relay publishes it again shortly.")
    return redirect(reverse("admin:orders_order_change", args=[order.id]))


@require_http_methods(["GET", "POST"])
def redrive(request: HttpRequest) -> HttpResponse:
    _require_permission(request)
    if request.method == "GET":
        snapshot = operations_snapshot()
        return TemplateResponse(
            request,
            "console/confirm.html",
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


RECONCILE_HOURS, RECONCILE_MAX_HOURS = 24, 31 * 24
KIND_EXPLANATIONS = {
    "charged_not_paid": "Charged at the provider, still waiting or being charged here. The repair records "
    "the charge: the order becomes paid.",
    "failed_but_charged": "Charged at the provider, failed here. The repair records the charge and sells the "
    "order's units again; if they were sold to someone else meanwhile, a person refunds or finds the unit.",
    "paid_not_charged": "Paid here, but the provider's books show no charge for the order's key. Check "
    "before shipping; never changed here.",
    "paid_other_charge": "Paid here with a charge id other than the one the provider's books show for the "
    "order. Never changed here.",
    "charged_twice": "Charged more than once at the provider. A person decides which charge to refund.",
    "unknown_charge": "A charge that names no order of ours. A person finds whose money it is.",
}


def _hours(request: HttpRequest) -> float | None:
    """The window in hours (`hours`, default 24); None unless more than 0 and at most 31 days."""
    raw = (request.POST.get("hours") or request.GET.get("hours") or str(RECONCILE_HOURS)).strip()
    try:
        hours = float(raw)
    except ValueError:
        return None
    return hours if 0 < hours <= RECONCILE_MAX_HOURS else None


@require_http_methods(["GET", "POST"])
def reconciliation(request: HttpRequest) -> HttpResponse:
    """GET: the provider's books against our orders over the last N hours (a dry run). POST: the
    same with the repairs (orders the books show charged become paid), audited."""
    repair = request.method == "POST"
    if repair:
        _require_permission(request)
    hours = _hours(request)
    if hours is None:
        if repair:
            messages.error(
                request, f"Give the window in hours (up to {RECONCILE_MAX_HOURS}). Nothing was changed."
            )
            return redirect("admin-operations-reconciliation")
        messages.warning(
            request,
            f"The window is more than 0 and at most {RECONCILE_MAX_HOURS} hours; showing {RECONCILE_HOURS}.",
        )
        hours = RECONCILE_HOURS
    try:
        result = reconcile(since=timezone.now() - timedelta(hours=hours), repair=repair)
    except LedgerUnavailable as exc:
        messages.error(
            request, f"The reconciliation did not run: {exc}. Nothing was changed; try again later."
        )
        result = None
    if repair and result is not None:
        _audit_repair(request, result, hours)
    return TemplateResponse(
        request,
        "console/reconciliation.html",
        context(
            request,
            title="Reconciliation",
            hours=f"{hours:g}",
            result=result,
            repaired=repair and result is not None,
            repaired_now=len(result.discrepancies) - len(result.unrepaired) if result else 0,
            sections=[_section(kind, result) for kind in KINDS] if result else [],
            repairable=len(result.repairable) if result else 0,
            can_act=request.user.has_perm(ACTION_PERMISSION),
        ),
    )


def _section(kind: str, result: Reconciliation) -> dict:
    return {
        "kind": kind,
        "explanation": KIND_EXPLANATIONS[kind],
        "rows": result.of_kind(kind),
        "left": result.count(kind) - result.repaired_count(kind),
        "repairable": kind in REPAIRABLE,
    }


def _audit_repair(request: HttpRequest, result: Reconciliation, hours: float) -> None:
    """One LogEntry for the run, and one on each order it paid (its history says who did it)."""
    repaired_ids = [d.order_id for d in result.discrepancies if d.repaired and d.order_id]
    if repaired_ids:
        LogEntry.objects.log_actions(
            _user_id(request),
            Order.objects.filter(pk__in=repaired_ids),
            CHANGE,
            change_message="reconcile: paid from the provider's books (the charge no attempt recorded)",
        )
    LogEntry.objects.create(
        user_id=_user_id(request),
        action_flag=CHANGE,
        object_repr="reconciliation",
        change_message=f"reconcile, last {hours:g} h, with repair: {result.line()}",
    )
    left = len(result.unrepaired)
    message = f"Repaired {len(repaired_ids)} order(s)."
    if left:
        messages.warning(request, f"{message} {left} discrepancy(ies) left for a person: see below.")
    else:
        messages.success(request, f"{message} Nothing is left.")
