"""Cross-cutting observability: Prometheus metrics, CloudWatch EMF lines and structured logs.

A leaf package: it imports nothing of the shop's (an import-linter contract keeps it so), so that
every part of the shop, gunicorn's config and the tools can use it without a cycle.
"""
