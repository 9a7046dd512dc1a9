"""Order admin: read-only. Status changes only through `orders.transitions`, never by hand here.

Staff actions (re-publish, retry: orders/operations.py) are bulk actions here and single ones on the
operations page; each asks for a confirmation first and is logged (LogEntry) with the staff user.
"Export CSV" streams the changelist's current filter, every text cell safe to open in a spreadsheet.
"""

import csv
import uuid
from collections.abc import Iterator
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from . import operations
from .models import Order, OrderEvent, OrderItem

CSV_COLUMNS = (
    "id", "created_at", "status", "mode", "email", "total", "currency", "attempts", "paid_at",
    "charge_id", "failure_code", "failure_reason", "payment_key",
)  # fmt: skip


# A spreadsheet runs a cell starting with one of these as a formula (`=cmd|...@example.com` is a
# valid email). OWASP's advice: make such a cell text with a leading single quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """`value` as a spreadsheet shows it: text that would start a formula gets a leading `'`."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return f"'{value}"
    return value


class _Echo:
    """csv.writer's file: hands each formatted line back instead of storing it."""

    def write(self, value: str) -> str:
        return value


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class OrderItemInline(ReadOnlyInline):
    model = OrderItem
    fields = ("sku", "name", "quantity", "unit_price", "line_total")
    readonly_fields = fields


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    verbose_name = "status change"
    verbose_name_plural = "status history"
    fields = ("when", "from_status", "to_status", "detail")
    readonly_fields = fields

    @admin.display(description="at (UTC)")
    def when(self, event: OrderEvent) -> str:
        # Seconds matter here: accepted → paid takes about one payment latency.
        return event.at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("id", "email", "status", "mode", "total", "currency", "attempts", "created_at", "paid_at")
    list_filter = ("status", "mode", "created_at")
    search_fields = ("email",)
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    inlines = (OrderEventInline, OrderItemInline)
    actions = ("republish_selected", "retry_selected")
    change_list_template = "admin/orders/order/change_list_export.html"
    fieldsets = (
        (
            None,
            {
                "fields": (
                    ("id", "status"),
                    ("email", "mode"),
                    ("total", "currency"),
                    ("created_at", "paid_at"),
                )
            },
        ),
        (
            "Payment",
            {
                "fields": (
                    ("payment_key", "charge_id"),
                    ("failure_reason", "failure_code"),
                    ("attempts", "lease_expires_at"),
                )
            },
        ),
    )
    readonly_fields = (
        "id", "email", "status", "mode", "total", "currency", "payment_key", "charge_id",
        "failure_reason", "failure_code", "attempts", "lease_expires_at", "created_at", "paid_at",
    )  # fmt: skip

    def get_search_results(self, request, queryset, search_term):
        """Search by email, or by the order's id (the UUID customers quote)."""
        try:
            return queryset.filter(pk=uuid.UUID(search_term.strip())), False
        except ValueError:
            return super().get_search_results(request, queryset, search_term)

    def has_add_permission(self, request):
        return False  # orders come from checkout

    def has_delete_permission(self, request, obj=None):
        return False  # an order's history is an audit trail

    # --- staff actions, in bulk ---------------------------------------------------------------

    @admin.action(
        description="Re-publish the payment jobs of selected accepted orders", permissions=["change"]
    )
    def republish_selected(self, request, queryset):
        return self._bulk(request, queryset, "republish", operations.republish, "Re-publish")

    @admin.action(description="Retry selected failed orders (cause fixed)", permissions=["change"])
    def retry_selected(self, request, queryset):
        return self._bulk(request, queryset, "retry", operations.retry_failed, "Retry")

    def _bulk(self, request, queryset, name, service, verb):
        """Confirm first (the selection, what will happen), then act on each order and report."""
        orders = list(queryset.order_by("created_at")[:500])
        if request.POST.get("post") != "yes":
            return TemplateResponse(
                request,
                "admin/orders/order/confirm_bulk.html",
                {
                    **self.admin_site.each_context(request),
                    "title": f"{verb} {len(orders)} order(s)?",
                    "orders": orders,
                    "action": request.POST.get("action", ""),
                    "action_name": name,
                    "verb": verb,
                    "opts": self.model._meta,
                    "action_checkbox_name": ACTION_CHECKBOX_NAME,
                },
            )
        done, refused = 0, []
        for order in orders:
            try:
                result = service(order.id)
            except operations.ActionRefused as exc:
                refused.append(str(exc))
                continue
            done += 1
            LogEntry.objects.log_actions(
                request.user.pk,
                [order],
                CHANGE,
                change_message=f"{name}: {result.detail}",
                single_object=True,
            )
        if done:
            self.message_user(request, f"{verb}: {done} order(s) done.", messages.SUCCESS)
        for message in refused[:10]:
            self.message_user(request, message, messages.ERROR)
        if len(refused) > 10:
            self.message_user(request, f"… and {len(refused) - 10} more refused.", messages.ERROR)
        return None

    # --- CSV export of the current filter ---------------------------------------------------------

    def get_urls(self):
        export = path("export.csv", self.admin_site.admin_view(self.export_csv), name="orders_order_export")
        return [export, *super().get_urls()]

    def export_csv(self, request):
        """Stream the orders the changelist shows under its current filter and search, as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        queryset = self.get_changelist_instance(request).get_queryset(request).order_by("-created_at")
        filters = request.GET.urlencode() or "no filter"
        LogEntry.objects.create(
            user_id=request.user.pk,
            action_flag=CHANGE,
            object_repr="orders CSV export",
            change_message=f"exported {queryset.count()} orders as CSV ({filters})",
        )

        def rows() -> Iterator[str]:
            writer = csv.writer(_Echo())
            yield writer.writerow(CSV_COLUMNS)
            for row in queryset.values_list(*CSV_COLUMNS).iterator(chunk_size=2000):
                yield writer.writerow([csv_cell(value) for value in row])

        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="orders-{stamp}.csv"'
        return response
