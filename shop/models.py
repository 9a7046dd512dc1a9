"""The catalogue, and the stock of limited products."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q


class Product(models.Model):
    sku = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    price = models.DecimalField(
        max_digits=10, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))]
    )
    active = models.BooleanField(default=True, help_text="Only active products can be ordered.")
    # Stock counts units put up for sale in total; what is left is stock − reserved − sold. Checkout
    # only ever adds to `reserved` (one conditional UPDATE) and the order's final transition moves
    # units from `reserved` to `sold` or back, so staff setting `stock` never races a checkout.
    stock = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Units for sale in total, reserved and sold ones included. Empty: unlimited.",
    )
    reserved = models.PositiveIntegerField(
        default=0, editable=False, help_text="Units held by orders not yet paid or failed."
    )
    sold = models.PositiveIntegerField(default=0, editable=False, help_text="Units in paid orders.")
    # The drop: checkout of this product opens at this second (the server's clock); before it, a
    # checkout answers 409 `sale_not_started` and creates nothing. The catalogue shows it.
    sale_starts_at = models.DateTimeField(
        null=True, blank=True, help_text="When checkout opens (the drop). Empty: on sale now."
    )
    # Units one customer may hold in orders not failed, counted in the same statement that reserves
    # the stock (CustomerAllowance); over it a checkout answers 409 `per_customer_limit`.
    per_customer_limit = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Units one customer (by email) may buy. Empty: no limit.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(price__gt=0), name="product_price_positive"),
            # The last line of defence against overselling: no write can hold or sell more than stock.
            models.CheckConstraint(
                condition=Q(stock__isnull=True) | Q(stock__gte=F("reserved") + F("sold")),
                name="product_stock_covers_reserved_and_sold",
                violation_error_message="Stock cannot be less than the units already reserved and sold.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"

    @property
    def limited(self) -> bool:
        return self.stock is not None

    @property
    def left(self) -> int | None:
        """Units still for sale; None for an unlimited product."""
        if self.stock is None:
            return None
        return max(self.stock - self.reserved - self.sold, 0)

    def on_sale(self, now) -> bool:
        """Whether checkout is open at `now` (the drop has happened, or there is none)."""
        return self.sale_starts_at is None or self.sale_starts_at <= now

    @property
    def sold_out(self) -> bool:
        return self.left == 0


class StockChange(models.Model):
    """The audit trail of stock set by staff: who changed it, from what, to what, and when."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="stock_changes")
    old_stock = models.PositiveIntegerField(null=True, blank=True)
    new_stock = models.PositiveIntegerField(null=True, blank=True)
    reserved = models.PositiveIntegerField(help_text="Units reserved when the change was made.")
    sold = models.PositiveIntegerField(help_text="Units sold when the change was made.")
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        def shown(value: int | None) -> str:
            return "unlimited" if value is None else str(value)

        return f"{self.product.sku}: {shown(self.old_stock)} → {shown(self.new_stock)}"


def customer_key(email: str) -> str:
    """Who a per-customer limit counts: the email, trimmed and lower-cased.

    Weak on purpose and said so: anyone with two addresses (or a provider's `+tag` and dot
    aliases) is two customers. A real deployment counts an account, a verified phone or the
    payment provider's card fingerprint instead; the allowance table takes any such key.
    """
    return email.strip().lower()


class CustomerAllowance(models.Model):
    """Units of a limited-per-customer product one customer holds in orders that have not failed."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="allowances")
    customer = models.CharField(max_length=254, help_text="customer_key(email)")
    units = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["product", "customer"], name="allowance_one_per_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.customer}: {self.units} × {self.product.sku}"
