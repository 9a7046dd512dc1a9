"""Order admin: read-only. Status changes only through `orders.transitions`, never by hand here."""

import uuid

from django.contrib import admin

from .models import Order, OrderEvent, OrderItem


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
            {"fields": (("payment_key", "charge_id"), "failure_reason", ("attempts", "lease_expires_at"))},
        ),
    )
    readonly_fields = (
        "id", "email", "status", "mode", "total", "currency", "payment_key", "charge_id",
        "failure_reason", "attempts", "lease_expires_at", "created_at", "paid_at",
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
