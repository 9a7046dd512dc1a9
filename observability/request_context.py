"""A request id for every log line a web request writes, and for the access log.

An incoming `X-Request-ID` (the ALB's, a client's or an upstream service's) is kept when it is a
sane token (1 to 128 printable ASCII characters, no spaces: it goes into logs), else a new one is made;
the response echoes it. It is bound to the request's log context (observability.logging), as is the
order id once a view knows it, and left in the WSGI environ for gunicorn's access line
(observability/access_log.py), which is written after this middleware has returned.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from observability import logging as log_context

HEADER = "X-Request-ID"
ENVIRON_KEY = "flashsale.log_context"
VALID = re.compile(r"[!-~]{1,128}")


def request_id_from(value: str | None) -> str:
    return value if value and VALID.fullmatch(value) else uuid.uuid4().hex


class RequestContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_from(request.headers.get(HEADER))
        log_context.clear()  # a gthread thread serves many requests: start clean
        log_context.bind(request_id=request_id)
        try:
            response = self.get_response(request)
        finally:
            request.META[ENVIRON_KEY] = log_context.context()
            log_context.clear()
        response[HEADER] = request_id
        return response
