from django.contrib import admin

from .models import Product


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("sku", "name", "price", "active", "updated_at")
    list_editable = ("price", "active")
    list_filter = ("active",)
    search_fields = ("sku", "name")
