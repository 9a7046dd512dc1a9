"""The web's access log keeps no customer data (observability/access_log.py)."""

import logging
import uuid
from datetime import timedelta
from types import SimpleNamespace

from gunicorn.config import Config

from config.processes import web_argv
from observability.access_log import ACCESS_LOG_FORMAT, RedactingLogger
from observability.request_context import ENVIRON_KEY


def test_the_web_command_logs_access_with_the_redacting_format():
    argv = web_argv(bind="127.0.0.1:8000", timeout=120)

    assert argv[argv.index("--access-logformat") + 1] == ACCESS_LOG_FORMAT
    assert argv[argv.index("--logger-class") + 1] == "observability.access_log.RedactingLogger"
    assert (
        "%(h)s" not in ACCESS_LOG_FORMAT
        and "%(a)s" not in ACCESS_LOG_FORMAT
        and "%(f)s" not in ACCESS_LOG_FORMAT
    )


def test_an_access_line_has_no_order_id_address_referrer_or_agent(caplog):
    order_id = uuid.uuid4()
    config = Config()
    config.set("accesslog", "-")
    config.set("access_log_format", ACCESS_LOG_FORMAT)
    logger = RedactingLogger(config)
    environ = {
        "REQUEST_METHOD": "GET", "RAW_URI": f"/orders/{order_id}", "PATH_INFO": f"/orders/{order_id}",
        "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "203.0.113.7",
        "HTTP_REFERER": f"https://shop.example.com/orders/{order_id}", "HTTP_USER_AGENT": "Mozilla/5.0 ann",
        ENVIRON_KEY: {"request_id": "req-1"},
    }  # fmt: skip
    request = SimpleNamespace(headers=[("REFERER", environ["HTTP_REFERER"])])
    response = SimpleNamespace(status="200 OK", response_length=12, sent=12, headers=[])
    captured = []
    logger.access_log = logging.getLogger("test.access")
    logger.access_log.handlers = []
    logger.access_log.addHandler(logging.Handler())
    logger.access_log.handlers[0].emit = lambda record: captured.append(record)
    logger.access_log.propagate = False
    logger.access_log.setLevel(logging.INFO)

    logger.access(response, request, environ, timedelta(microseconds=1500))

    (record,) = captured
    line = record.getMessage()
    assert record.request_id == "req-1" and record.status == "200" and record.duration_ms == 1.5
    assert '"GET /orders/<id> HTTP/1.1" 200' in line
    assert str(order_id) not in line and "203.0.113.7" not in line and "Mozilla" not in line
