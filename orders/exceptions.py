"""Domain errors of the orders app. `orders.api.errors.exception_handler` maps them to HTTP."""


class OrderError(Exception):
    """Base of every orders error."""


class InvalidOrder(OrderError):
    """The order cannot be placed as asked; `errors` maps fields to messages, like a serializer."""

    def __init__(self, errors: dict):
        super().__init__("Invalid order.")
        self.errors = errors


class IllegalTransition(OrderError):
    """The move is not in the transition table."""


class TransitionConflict(OrderError):
    """The order was not in the expected status any more: somebody else moved it first."""


class IdempotencyKeyInUse(OrderError):
    """A request with this Idempotency-Key is still being processed (409)."""


class IdempotencyKeyReused(OrderError):
    """This Idempotency-Key was first used with a different request body (422)."""


class InvalidIdempotencyKey(OrderError):
    """The Idempotency-Key header is empty or too long (400)."""


class CheckoutQueued(OrderError):
    """The provider is at capacity: a sync checkout waits its turn (503 `checkout_queue`).

    `position`: customers waiting ahead (0: next); `retry_after`: seconds; `keyed`: the request
    had an Idempotency-Key, so its place is kept for its retry.
    """

    def __init__(self, *, position: int, retry_after: int, keyed: bool):
        self.position, self.retry_after, self.keyed = position, retry_after, keyed
        if keyed:
            place = f"You are number {position + 1} in line, and your place is kept"
            how = "retry with the same Idempotency-Key"
        else:
            place = f"{position} customers are waiting; without an Idempotency-Key no place is kept"
            how = "retry (send an Idempotency-Key to keep a place in line)"
        super().__init__(
            "Payments are going through as fast as the payment provider takes them. "
            f"{place}: {how} in {retry_after} s. Nothing was ordered or charged yet."
        )
