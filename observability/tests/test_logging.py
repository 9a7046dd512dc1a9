"""Structured log lines (observability/logging.py): JSON in production, readable locally."""

import json
import logging

import pytest

from observability import logging as structured


def render(log_format: str, message: str, *args, **extra) -> str:
    record = logging.LogRecord("orders.test", logging.INFO, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return structured.formatter(log_format).format(record)


def test_a_json_line_carries_the_bound_context_and_the_records_extras():
    with structured.bound(request_id="req-1", order_id="o-1"):
        line = render("json", "order %s", "accepted", outcome="paid")
    outside = json.loads(render("json", "later"))

    document = json.loads(line)
    assert document["event"] == "order accepted"
    assert (document["request_id"], document["order_id"], document["outcome"]) == ("req-1", "o-1", "paid")
    assert document["level"] == "info" and document["logger"] == "orders.test" and document["timestamp"]
    assert "order_id" not in outside  # unbound when the block ended


def test_the_console_format_is_one_readable_line():
    with structured.bound(order_id="o-2"):
        line = render("console", "charge paid")

    assert "charge paid" in line and "order_id=o-2" in line and "\n" not in line
    with pytest.raises(ValueError):
        json.loads(line)


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        structured.formatter("xml")
