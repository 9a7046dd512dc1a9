"""Which client sent a request: one rule for the API's rate limits (DRF) and the admin lockout (axes).

Behind TRUSTED_PROXY_COUNT proxies (production: 1, the ALB) REMOTE_ADDR is the nearest proxy's
address. Each proxy appends the address it saw to X-Forwarded-For and whatever the client sent stays
to the left, so the client is the entry that many places from the right: with one ALB the right-most.
Anything further left is the client's own writing. With no proxy (local), REMOTE_ADDR and nothing else.

That is DRF's NUM_PROXIES rule (`BaseThrottle.get_ident`), and django-axes asks this function
(AXES_CLIENT_IP_CALLABLE), which applies it, so the two never disagree. django-ipware cannot say it:
django-ipware 7 calls python-ipware in strict mode, where a proxy count is an exact number of hops
and one unparsable entry discards the header, so a client that prepends an entry of its own, forged
or from a proxy of its own, is counted as the ALB (or as no one), all such clients as one.
"""

from __future__ import annotations

import ipaddress
from typing import cast

from django.http import HttpRequest
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle


def client_ip(request: HttpRequest) -> str | None:
    """The client's address as the rate limits see it; REMOTE_ADDR if that is not an IP address."""
    ident = BaseThrottle().get_ident(cast(Request, request))  # it reads request.META only
    try:
        ipaddress.ip_address(ident)
    except ValueError:
        # Only a request that bypassed the proxies can get here (each proxy writes an address); the
        # lockout stores an IP address (a GenericIPAddressField), so it counts the peer instead.
        return request.META.get("REMOTE_ADDR")
    return ident
