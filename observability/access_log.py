"""gunicorn's access and error logs, structured like every other line (observability.logging), and
the access line without customer data: no client address, referrer or user agent, and order ids
(UUIDs, bearer tokens for an order's page) replaced by `<id>` in the request line.

The access line carries the request's log context (request_id, and order_id when the view knew
one) from the WSGI environ, where observability/request_context.py leaves it: gunicorn writes the line
after the application returned. `config.processes.web_argv` passes ACCESS_LOG_FORMAT and this
logger class to gunicorn; LOG_FORMAT (json, console) is read from the environment, since the
master has no Django settings.
"""

from __future__ import annotations

import os
import re
import traceback

from gunicorn.glogging import Logger

from observability.logging import formatter
from observability.request_context import ENVIRON_KEY

ACCESS_LOG_FORMAT = '%(t)s "%(r)s" %(s)s %(b)s %(M)sms'
UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")


def redact(text: str) -> str:
    return UUID.sub("<id>", text)


class RedactingLogger(Logger):
    def setup(self, cfg) -> None:
        super().setup(cfg)
        structured = formatter(os.environ.get("LOG_FORMAT", "json"))
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                if getattr(handler, "_gunicorn", False):
                    handler.setFormatter(structured)

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for name in ("r", "U", "q", "f"):
            if isinstance(atoms.get(name), str):
                atoms[name] = redact(atoms[name])
        return atoms

    def access(self, resp, req, environ, request_time) -> None:
        if not self.access_log_enabled:
            return
        safe_atoms = self.atoms_wrapper_class(self.atoms(resp, req, environ, request_time))
        fields = {
            **environ.get(ENVIRON_KEY, {}),
            "status": safe_atoms["s"],
            "duration_ms": round(request_time.total_seconds() * 1000, 1),
        }
        try:
            self.access_log.info(self.cfg.access_log_format, safe_atoms, extra=fields)
        except Exception:
            self.error(traceback.format_exc())
