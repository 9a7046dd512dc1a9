"""The shop runs on PostgreSQL only: check that the server answers, and create the database if missing.

`make run` calls `python -m devstack.database` before migrating (it creates DATABASE_URL's database
when the server has none of that name); the test session (conftest.py) checks the server first.
Either stops with one line saying how to point DATABASE_URL at a server when none answers.
"""

from __future__ import annotations

import os
import sys

import psycopg
from psycopg import sql

HOW = (
    "start one (apt-get install postgresql) or point DATABASE_URL at any PostgreSQL server: "
    "DATABASE_URL=postgres://USER[:PASSWORD]@HOST:PORT/NAME"
)


class Unreachable(Exception):
    """No PostgreSQL server answers at the configured address (the message is the one line to show)."""


def _where(database: dict) -> str:
    return f"{database.get('HOST') or 'localhost'}:{database.get('PORT') or 5432}"


def _server(database: dict) -> psycopg.Connection:
    """A connection to the server's maintenance database, as the settings' user."""
    if database["ENGINE"] != "django.db.backends.postgresql":
        raise Unreachable(f"DATABASE_URL must name a PostgreSQL database, not {database['ENGINE']}: {HOW}")
    try:
        return psycopg.connect(
            host=database.get("HOST") or "localhost", port=database.get("PORT") or 5432,
            user=database.get("USER") or None, password=database.get("PASSWORD") or None,
            dbname="postgres", autocommit=True, connect_timeout=3,
        )  # fmt: skip
    except psycopg.OperationalError as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise Unreachable(
            f"PostgreSQL is required and none answers at {_where(database)} ({reason}); {HOW}"
        ) from None


def check_server(database: dict) -> None:
    """Unreachable unless the settings' PostgreSQL server answers."""
    _server(database).close()


def ensure_database(database: dict) -> bool:
    """Create the settings' database on its server if it is missing; True if it was created."""
    with _server(database) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database["NAME"]]).fetchone()
        if exists:
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database["NAME"])))
        return True


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    from django.conf import settings

    database = settings.DATABASES["default"]
    try:
        if ensure_database(database):
            print(f"created database {database['NAME']} on {_where(database)}")
    except Unreachable as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
