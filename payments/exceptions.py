"""Every provider failure maps to one of these (see payments.gateway)."""


class PaymentError(Exception):
    """Base of every payment failure."""


class PaymentDeclined(PaymentError):
    """The provider refused the charge. Final: retrying will not change the answer."""


class PaymentRejected(PaymentError):
    """The provider refused the request itself (4xx): a bug or misconfiguration. Final."""


class PaymentUnavailable(PaymentError):
    """No answer we can rely on (timeout, connection error, 5xx, 429). Retry with the same key."""


class PaymentTimeout(PaymentUnavailable):
    """The provider did not answer in time; the charge may or may not have happened."""
