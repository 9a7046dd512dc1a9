"""Structured logs: one JSON object per line (production) or aligned, readable lines (`make run`).

structlog renders the standard library's records, so Django's, Celery's, gunicorn's and our own
`logging.getLogger(...)` calls all come out in one format. Context bound with `bind()` (request
id on the web, task id on the worker, the order id wherever one is at hand) rides on every line
logged in that thread or task until it is unbound: structlog's contextvars.

    LOG_FORMAT=json     {"event": "order status changed", "order_id": "…", "request_id": "…", …}
    LOG_FORMAT=console  2026-…  info  order status changed  order_id=… request_id=…
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

FORMATS = ("json", "console")

_pre_chain: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.ExtraAdder(),  # logging's `extra={...}` become fields
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def formatter(log_format: str = "json") -> logging.Formatter:
    """A logging.Formatter for `log_format`; Django's LOGGING names it with `"()"`."""
    if log_format not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {log_format!r}")
    renderer: Any
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer()
        extra: list[Any] = [structlog.processors.format_exc_info]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
        extra = []
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_pre_chain,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *extra, renderer],
    )


def bind(**values: Any) -> None:
    """Add fields to every line this thread (or task, or request) logs from now on."""
    structlog.contextvars.bind_contextvars(**{k: str(v) for k, v in values.items() if v is not None})


def clear() -> None:
    structlog.contextvars.clear_contextvars()


@contextmanager
def bound(**values: Any) -> Iterator[None]:
    """Fields for the lines logged inside the block only."""
    tokens = structlog.contextvars.bind_contextvars(**{k: str(v) for k, v in values.items() if v is not None})
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


def context() -> dict[str, Any]:
    return structlog.contextvars.get_contextvars()
