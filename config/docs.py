"""The API docs page (Swagger UI from drf-spectacular-sidecar) under the site's Content-Security-Policy.

Its init script is a URL of its own (SpectacularSwaggerSplitView), so script-src stays 'self'; Swagger
UI styles elements inline, so this page alone may use inline styles.
"""

from csp.decorators import csp_update

from orders.checkout import MAX_LINES

docs_csp = csp_update({"style-src": ["'unsafe-inline'"]})


def basket_limits(result: dict, generator, request, public) -> dict:
    """Postprocessing hook: state the basket's line limits, which DRF's ListSerializer keeps to itself."""
    items = result["components"]["schemas"]["CheckoutInputRequest"]["properties"]["items"]
    items.update(minItems=1, maxItems=MAX_LINES)
    return result
