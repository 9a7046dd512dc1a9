"""Structured log lines (observability/logging.py): JSON in production, readable locally."""

import json
import logging
import os
import subprocess
import sys
import threading

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


def _handler(stream) -> structured.BackgroundStreamHandler:
    handler = structured.BackgroundStreamHandler(stream)
    handler.setFormatter(structured.formatter("json"))
    return handler


def _logger(handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(f"orders.test.background.{id(handler)}")
    logger.propagate = False
    logger.addHandler(handler)
    return logger


def test_the_background_handler_writes_every_line_formatted_in_its_callers_context(tmp_path):
    stream = (tmp_path / "log").open("w")
    handler = _handler(stream)
    logger = _logger(handler)

    def log_from_a_thread(n: int) -> None:
        with structured.bound(order_id=f"o-{n}"):
            for i in range(100):
                logger.info("line %d", i, extra={"thread_no": n})

    threads = [threading.Thread(target=log_from_a_thread, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    handler.close()  # what logging's exit hook does: everything queued is written first
    stream.close()

    lines = [json.loads(line) for line in (tmp_path / "log").read_text().splitlines()]
    assert len(lines) == 800
    assert all(line["order_id"] == f"o-{line['thread_no']}" for line in lines)  # the caller's context
    for n in range(8):  # each thread's lines in its own order
        assert [line["event"] for line in lines if line["thread_no"] == n] == [
            f"line {i}" for i in range(100)
        ]


def test_a_process_exiting_normally_writes_what_is_still_queued():
    script = (
        "import logging, sys\n"
        "from observability import logging as structured\n"
        "handler = structured.BackgroundStreamHandler(sys.stderr)\n"
        "logging.basicConfig(handlers=[handler], level=logging.INFO, force=True)\n"
        "for i in range(5000): logging.getLogger('x').info('line %d', i)\n"
    )

    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr.splitlines() == [f"INFO:x:line {i}" for i in range(5000)]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_a_forked_child_writes_through_a_writer_of_its_own(tmp_path):
    path = tmp_path / "log"
    stream = path.open("w", buffering=1)
    handler = _handler(stream)
    logger = _logger(handler)
    logger.info("parent before fork")

    pid = os.fork()
    if pid == 0:  # the child: the parent's writer thread did not come along
        try:
            logger.info("child")
            handler.close()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    logger.info("parent after fork")
    handler.close()
    stream.close()

    events = [json.loads(line)["event"] for line in path.read_text().splitlines()]
    assert sorted(events) == ["child", "parent after fork", "parent before fork"]
