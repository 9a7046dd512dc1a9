"""Every provider failure maps to one of these (see payments.gateway)."""


class PaymentError(Exception):
    """Base of every payment failure."""


class PaymentDeclined(PaymentError):
    """The provider refused the charge. Final: retrying will not change the answer."""


class PaymentRejected(PaymentError):
    """The provider refused the request itself (4xx): a bug or misconfiguration. Final."""


class PaymentNotAuthorized(PaymentError):
    """The provider refused our credentials (401/403): our configuration is wrong, not the customer's card.

    Nothing was charged. The order must not fail for it: the caller holds it for a retry and
    alerts (orders.charging).
    """


class PaymentUnavailable(PaymentError):
    """No answer we can rely on (timeout, connection error, 5xx, 429). Retry with the same key."""


class PaymentTimeout(PaymentUnavailable):
    """The provider did not answer in time; the charge may or may not have happened."""
