"""Domain errors of the catalogue. `orders.api.errors.exception_handler` maps them to HTTP."""


class ShopError(Exception):
    """Base of every shop error."""


class OutOfStock(ShopError):
    """A limited product has fewer units left than an order asks for (409); nothing was reserved."""

    def __init__(self, *, sku: str, name: str, requested: int, left: int):
        self.sku, self.name, self.requested, self.left = sku, name, requested, left
        if left == 0:
            message = f"{name} is sold out."
        else:
            message = f"Only {left} of {name} left; the order asked for {requested}."
        super().__init__(message)


class SaleNotStarted(ShopError):
    """A product's sale has not opened yet (409 `sale_not_started`); nothing was created."""

    def __init__(self, *, sku: str, name: str, starts_at):
        self.sku, self.name, self.starts_at = sku, name, starts_at
        super().__init__(f"{name} goes on sale at {starts_at.isoformat()}.")


class PerCustomerLimit(ShopError):
    """A customer asked for more of a product than its per-customer limit leaves them (409)."""

    def __init__(self, *, sku: str, name: str, limit: int, already: int, requested: int):
        self.sku, self.name, self.limit, self.already, self.requested = sku, name, limit, already, requested
        super().__init__(
            f"{name} is limited to {limit} per customer; "
            f"you already hold {already} and asked for {requested}."
        )


class StockBelowCommitted(ShopError):
    """Staff tried to set stock below the units already reserved and sold."""
