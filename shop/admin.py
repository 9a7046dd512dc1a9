"""Catalogue admin. Staff set stock here; every change goes through shop.stock.set_stock (audited)."""

from django import forms
from django.contrib import admin, messages

from . import stock
from .exceptions import StockBelowCommitted
from .models import Product, StockChange


class StockChangeInline(admin.TabularInline):
    model = StockChange
    verbose_name = "stock change"
    verbose_name_plural = "stock changes (audit)"
    extra = 0
    can_delete = False
    fields = ("at", "changed_by", "old_stock", "new_stock", "reserved", "sold")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ProductForm(forms.ModelForm):
    class Meta:
        model = Product
        fields = ("sku", "name", "price", "active", "stock")

    def clean_stock(self):
        # The model's constraint is skipped by form validation (reserved and sold are not form
        # fields); say it here. shop.stock.set_stock checks again under the row lock.
        stock = self.cleaned_data["stock"]
        committed = self.instance.reserved + self.instance.sold
        if stock is not None and stock < committed:
            raise forms.ValidationError(
                f"Stock cannot be less than the units already reserved and sold ({committed})."
            )
        return stock


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    form = ProductForm
    list_display = (
        "sku", "name", "price", "active", "sale_starts_at", "stock", "reserved", "sold", "left", "updated_at",
    )  # fmt: skip
    list_editable = ("price", "active", "stock")
    list_filter = ("active",)
    search_fields = ("sku", "name")
    fields = (
        "sku", "name", "price", "active", "sale_starts_at", "per_customer_limit", "stock", "reserved", "sold",
        "left",
    )  # fmt: skip
    readonly_fields = ("reserved", "sold", "left")
    inlines = (StockChangeInline,)

    def get_changelist_form(self, request, **kwargs):
        return super().get_changelist_form(request, form=ProductForm, **kwargs)

    @admin.display(description="left")
    def left(self, product: Product) -> str:
        return "unlimited" if product.left is None else str(product.left)

    def save_model(self, request, obj, form, change):
        """Save only the edited fields; stock through the audited service.

        A whole-row save would write back the reserved and sold counts the form was loaded with,
        undoing every checkout that ran in between.
        """
        if not change:
            initial, obj.stock = obj.stock, None
            obj.save()
            if initial is not None:
                stock.set_stock(obj.pk, initial, by=request.user)
                obj.refresh_from_db()
            return
        other = [name for name in form.changed_data if name != "stock"]
        if other:
            obj.save(update_fields=[*other, "updated_at"])
        if "stock" in form.changed_data:
            try:
                stock.set_stock(obj.pk, form.cleaned_data["stock"], by=request.user)
            except StockBelowCommitted as exc:
                messages.error(request, f"Stock not changed: {exc}")
            obj.refresh_from_db()
