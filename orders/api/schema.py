"""The OpenAPI description's additions that drf-spectacular cannot infer from the orders' API."""

from orders.checkout import MAX_LINES


def basket_limits(result: dict, generator, request, public) -> dict:
    """Postprocessing hook: state the basket's line limits, which DRF's ListSerializer keeps to itself."""
    items = result["components"]["schemas"]["CheckoutInputRequest"]["properties"]["items"]
    items.update(minItems=1, maxItems=MAX_LINES)
    return result
