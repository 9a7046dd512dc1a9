"""Helpers for the few statements written by hand: the one-statement moves of PostgreSQL's hot paths.

Django 5.2 has no INSERT … SELECT and no UPDATE … RETURNING, so the checkout's accept
(orders.checkout) and the claim and payment (orders.transitions) are data-modifying CTEs written
here in SQL. Every table and column name comes from the models' `_meta`, so a renamed field cannot
drift from the statements.
"""

from collections.abc import Iterable

from django.db import connection
from django.db.models import Field, Model


def column(model: type[Model], name: str) -> str:
    """The quoted column of the concrete field `name` of `model`."""
    field = model._meta.get_field(name)
    assert isinstance(field, Field) and field.column  # a concrete column, not a reverse relation
    return connection.ops.quote_name(field.column)


def columns(model: type[Model], names: Iterable[str]) -> str:
    """The quoted columns of `names`, comma-separated, in their order."""
    return ", ".join(column(model, name) for name in names)


def table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)
