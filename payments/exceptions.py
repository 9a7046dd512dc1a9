"""Every provider failure maps to one of these (see payments.gateway).

Two questions decide what the order domain does with a failure: is the answer final, and could the
card have been charged? The classes answer both:

    PaymentDeclined, PaymentRejected   final: the provider said no; nothing was charged
    PaymentNotAuthorized               our API key was refused; nothing was charged; hold and alert
    PaymentUnavailable                 no answer, and the request never reached the provider
    └ PaymentOutcomeUnknown            no answer we can rely on, and it may have charged
      ├ PaymentTimeout                 our deadline passed (a slow charge, a drip, a queue)
      └ PaymentInFlight                409: a request with this key is still running there

An unknown outcome is never a failure: only the same key, retried once the provider has settled
the request, or a lookup of the key, tells what happened.
"""


class PaymentError(Exception):
    """Base of every payment failure."""


class PaymentDeclined(PaymentError):
    """The provider refused the charge. Final: retrying will not change the answer."""


class PaymentRejected(PaymentError):
    """The provider refused the request itself (4xx): a bug or misconfiguration. Final; nothing charged."""


class PaymentNotAuthorized(PaymentError):
    """The provider refused our credentials (401/403): our configuration is wrong, not the customer's card.

    Nothing was charged. The order must not fail for it: the caller holds it for a retry and
    alerts (orders.charging).
    """


class PaymentUnavailable(PaymentError):
    """No final answer. This class alone: the request never reached the provider (refused connection,
    429), so nothing was charged. Retry with the same key."""


class PaymentOutcomeUnknown(PaymentUnavailable):
    """The request may have reached the provider and charged: a dropped connection, a 5xx, an answer
    we cannot read. Retry the same key only after the provider has settled it (or look the key up)."""


class PaymentTimeout(PaymentOutcomeUnknown):
    """The provider did not answer within our wall-clock deadline; the charge may or may not have happened."""


class PaymentInFlight(PaymentOutcomeUnknown):
    """409: the provider is still working on a request with this key (ours, from an earlier attempt)."""
