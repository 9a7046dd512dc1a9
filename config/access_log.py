"""gunicorn's access log without customer data: no client address, referrer or user agent, and order
ids (UUIDs, bearer tokens for an order's page) replaced by `<id>` in the request line.

`config.processes.web_argv` passes ACCESS_LOG_FORMAT and this logger class to gunicorn.
"""

from __future__ import annotations

import re

from gunicorn.glogging import Logger

ACCESS_LOG_FORMAT = '%(t)s "%(r)s" %(s)s %(b)s %(M)sms'
UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")


def redact(text: str) -> str:
    return UUID.sub("<id>", text)


class RedactingLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for name in ("r", "U", "q", "f"):
            if isinstance(atoms.get(name), str):
                atoms[name] = redact(atoms[name])
        return atoms
