"""The API's one error shape and its schema (core/api.py applies it to every error under /api/).

{"code": "<stable, machine-readable>", "detail": "<for people>", ...}
"""

from __future__ import annotations

from django.http import JsonResponse
from rest_framework import serializers


class ErrorOutput(serializers.Serializer):
    """Every error under /api/."""

    code = serializers.CharField(help_text="Stable and machine-readable, e.g. `out_of_stock`, `throttled`.")
    detail = serializers.CharField(help_text="For people.")
    # The metaclass takes declared fields off the class, so this does not hide Serializer.errors.
    errors = serializers.DictField(  # type: ignore[assignment]
        required=False, help_text="On a 400 `invalid`: field → messages."
    )


class TooLargeOutput(ErrorOutput):
    limit = serializers.IntegerField(help_text="The largest body accepted, in bytes.")


def error_body(code: str, detail: str, **extra) -> dict:
    return {"code": code, "detail": detail, **extra}


def problem(http_status: int, code: str, detail: str, **extra) -> JsonResponse:
    """An error in the API's shape, for code outside DRF views (middleware)."""
    return JsonResponse(error_body(code, detail, **extra), status=http_status)
