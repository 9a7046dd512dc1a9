"""Orders, their lines and their status history.

`status` is written only by `orders.transitions`; every change leaves an `OrderEvent`.
"""

import uuid
from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class OrderStatus(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    PROCESSING = "processing", "Processing"
    PAID = "paid", "Paid"
    FAILED = "failed", "Failed"


class FailureCode(models.TextChoices):
    """Why an order failed, as far as the provider's books go (decides how a retry may charge)."""

    DECLINED = "declined", "Declined by the provider"  # final answer for its key: nothing charged
    REJECTED = "rejected", "Rejected by the provider"  # the request was refused: nothing charged
    UNAVAILABLE = "unavailable", "Provider unavailable"  # unknown: a timed-out charge may have landed


class CheckoutMode(models.TextChoices):
    SYNC = "sync", "Synchronous"
    ASYNC = "async", "Asynchronous"


class Order(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField()
    mode = models.CharField(max_length=5, choices=CheckoutMode.choices)
    status = models.CharField(
        max_length=10, choices=OrderStatus.choices, default=OrderStatus.ACCEPTED, editable=False
    )
    currency = models.CharField(max_length=3)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    # Sent as the provider's Idempotency-Key on every attempt, so a retry never charges twice.
    # Unique by a constraint (Meta), not `unique=True`, which also builds a LIKE index nothing reads.
    payment_key = models.CharField(max_length=64, editable=False)
    charge_id = models.CharField(max_length=64, blank=True, editable=False)
    failure_reason = models.CharField(max_length=255, blank=True, editable=False)
    failure_code = models.CharField(max_length=11, choices=FailureCode.choices, blank=True, editable=False)
    attempts = models.PositiveIntegerField(default=0, editable=False)  # claims since placed (or retried)
    lease_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The fencing token: every claim adds one and nothing resets it, so each attempt holds its own
    # number and every move it makes after the claim compares it (orders.transitions): an attempt
    # whose lease ran out and was taken over changes nothing.
    claim_token = models.PositiveIntegerField(default=0, editable=False)
    # No claim before this: an attempt whose outcome is unknown (a timeout, a 409, a dropped answer)
    # leaves the order waiting until the provider has settled that request (PAYMENT_SETTLE_SECONDS).
    next_attempt_at = models.DateTimeField(null=True, blank=True, editable=False)
    # When a payment job was last published for this order; null when publishing failed. The
    # sweeper publishes again for null ones at once and for long-waiting ones now and then.
    enqueued_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    paid_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        # Every accept writes an entry in each index that holds its row: the two partial ones below
        # hold only the orders their queries look for, so an accepted order is not in them.
        indexes = [
            models.Index(fields=["status", "enqueued_at"], name="order_status_enqueued_idx"),
            # Expired leases (the sweeper): only orders being charged have one.
            models.Index(
                fields=["lease_expires_at"],
                name="order_processing_lease_idx",
                condition=models.Q(status="processing"),
            ),
            # A waiting order's place in line (orders.selectors.queue_place).
            models.Index(fields=["status", "created_at"], name="order_status_created_idx"),
            # The paying rate and the reconciliation's window: paid orders only.
            models.Index(
                fields=["paid_at"], name="order_paid_at_idx", condition=models.Q(paid_at__isnull=False)
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(total__gte=0), name="order_total_not_negative"),
            models.UniqueConstraint(fields=["payment_key"], name="order_payment_key_unique"),
        ]

    def __str__(self) -> str:
        return f"Order {self.id} ({self.status})"

    @staticmethod
    def payment_key_for(order_id: uuid.UUID) -> str:
        """The provider's Idempotency-Key for an order: derived from its id, the same on every attempt."""
        return f"order-{order_id}"

    @staticmethod
    def retry_payment_key_for(order_id: uuid.UUID, retry: int) -> str:
        """A fresh key for a staff retry after a decline (orders/operations.py says when)."""
        return f"order-{order_id}-retry-{retry}"

    @property
    def amount_minor(self) -> int:
        """The total in the currency's minor unit (cents), as payment providers take it."""
        return int((self.total * 100).to_integral_value())


class OrderItem(models.Model):
    # No index of its own: the unique (order, product) index below serves every lookup by order.
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items", db_index=False)
    # No database constraint: its check at commit took a KEY SHARE lock on the product's row for
    # every line, and concurrent accepts of one product shared it as a MultiXact (PostgreSQL wrote
    # ~1.3 MultiXact members per order in the saturation run). Products are never deleted: PROTECT
    # refuses it in Django (the admin), and the catalogue only deactivates them. No index either:
    # nothing looks lines up by product, and a flash sale's lines all went to one leaf page of it.
    product = models.ForeignKey(
        "shop.Product", on_delete=models.PROTECT, related_name="+", db_constraint=False, db_index=False
    )
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    quantity = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(100)])
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)
    # Set at checkout for a limited product: this line holds `quantity` units of its stock, sold
    # or released by the order's final transition. Recorded so that staff making a product limited
    # or unlimited mid-sale cannot unbalance the counters.
    stock_reserved = models.BooleanField(default=False, editable=False)
    # The line counts against its product's per-customer limit (shop.CustomerAllowance).
    counted_for_customer = models.BooleanField(default=False, editable=False)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["order", "product"], name="order_item_unique_product"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.sku}"

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity


class OrderEvent(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=10, choices=OrderStatus.choices, blank=True)
    to_status = models.CharField(max_length=10, choices=OrderStatus.choices)
    at = models.DateTimeField(auto_now_add=True)
    detail = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.from_status or '∅'} → {self.to_status}"


class IdempotencyKey(models.Model):
    """A checkout request's `Idempotency-Key`: the first response, replayed for repeats."""

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        DONE = "done", "Done"

    scope = models.CharField(max_length=64, help_text="The endpoint the key was used on.")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the request body.")
    state = models.CharField(max_length=11, choices=State.choices, default=State.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The id of the order placed under this key, chosen when the key is reserved (before the order
    # exists), so that a retry after any failure resumes that order instead of placing another.
    order_uuid = models.UUIDField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    locked_until = models.DateTimeField(help_text="An in-progress request older than this was abandoned.")
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="idempotency_key_unique")]

    def __str__(self) -> str:
        return f"{self.scope} {self.key} ({self.state})"


class OrderNotification(models.Model):
    """An email about an order's final status, claimed before it is sent: at most one per kind."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=16, choices=OrderStatus.choices)
    claimed_at = models.DateTimeField(auto_now_add=True)
    sent = models.BooleanField(default=False, help_text="False: the send raised (logged), not retried.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["order", "kind"], name="notification_once_per_kind")]

    def __str__(self) -> str:
        return f"{self.kind} email for order {self.order_id}"
