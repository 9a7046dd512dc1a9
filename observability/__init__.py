"""Cross-cutting observability: Prometheus metrics, CloudWatch EMF lines, structured logs with the
request's context, gunicorn's access log, the worker's and the sweeper's heartbeat, and the web's
liveness (`/healthz`) and readiness (`/readyz`, whose SQS probe settings wire from queues/).

A leaf package: it imports nothing of the shop's (an import-linter contract keeps it so), so that
every part of the shop, gunicorn's config and the tools can use it without a cycle.
"""
