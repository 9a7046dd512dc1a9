"""`GET /healthz`: the process is up and serving. For load balancer and container health checks.

Answered before any other middleware on purpose: an ALB health check sends the task's IP as
its Host header, which ALLOWED_HOSTS rightly refuses, and a liveness probe must not read the
database (a database outage would otherwise get every healthy web task replaced).
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

PATH = "/healthz"


class HealthCheckMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == PATH and request.method in ("GET", "HEAD"):
            return HttpResponse("ok\n", content_type="text/plain")
        return self.get_response(request)
