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
