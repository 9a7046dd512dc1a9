"""`GET /healthz`: the process is up and serving. For load balancer and container health checks.
`GET /readyz` (observability/readiness.py): the database, the migrations and SQS are ready too.

Answered before any other middleware on purpose: an ALB health check sends the task's IP as
its Host header, which ALLOWED_HOSTS rightly refuses, and a liveness probe must not read the
database (a database outage would otherwise get every healthy web task replaced). Readiness is
answered here too, for the same Host reason, but it does read the database (at most once per
READYZ_CACHE_SECONDS): see its module.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from observability import readiness

PATH = "/healthz"


class HealthCheckMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == PATH and request.method in ("GET", "HEAD"):
            return HttpResponse("ok\n", content_type="text/plain")
        if request.path == readiness.PATH and request.method in ("GET", "HEAD"):
            return readiness.readyz()
        return self.get_response(request)
