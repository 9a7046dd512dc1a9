"""Settings shared by every environment. Everything configurable comes from the environment."""

import math
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

from core.timeouts import Timeouts

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
env.read_env(str(BASE_DIR / ".env"))  # optional: a local .env (see .env.example)

# --- Django ---------------------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=[])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our own static files: the docs work offline
    "csp",
    "axes",
    "shop",
    "orders",
    "payments",
    "queues",
    "sizing",  # worker sizing: manage.py recommend_workers
    "observability",
    "console",  # the operator's console in the admin (/admin/operations/)
]

MIDDLEWARE = [
    "observability.health.HealthCheckMiddleware",  # first: no Host check, no database (see the module)
    # A request id for every log line of the request (X-Request-ID in, or made; echoed back).
    "observability.request_context.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Everything under /api/ answers errors in one JSON shape and refuses big bodies (413) here.
    "core.api.ApiBoundaryMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out client before the password check
    "django.contrib.auth.backends.ModelBackend",
]

# The admin's URL (no leading slash): moving it off /admin/ sheds most password-guessing bots.
ADMIN_URL = env("DJANGO_ADMIN_URL", default="admin/")
if not ADMIN_URL.endswith("/") or ADMIN_URL.startswith("/"):
    raise ImproperlyConfigured(
        "DJANGO_ADMIN_URL must be a path like 'staff-7f3a/': no leading slash, one trailing"
    )

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Connections one process (a web process, a worker with all its threads, the sweeper) may hold at
# once: its share of the server's max_connections. A worker thread holds one only while it uses it
# (claim, record), never across the provider call; orders/checks.py refuses a configuration that
# could open more than this.
DATABASE_CONNECTION_BUDGET = env.int("DATABASE_CONNECTION_BUDGET", default=20)
# PostgreSQL connections come from a pool per process (Django 5.2, psycopg_pool): threads borrow
# one for a query or a transaction and give it back, so 200 worker threads share a handful and
# the web never pays a connection set-up. 0 turns the pool off (a connection per thread).
# DB_POOL_MAX_SIZE is the most a process opens (what DATABASE_CONNECTION_BUDGET is checked against).
DB_POOL_MAX_SIZE = env.int("DB_POOL_MAX_SIZE", default=10)
# DB_POOL_MIN_SIZE connections are opened at start and kept; the pool grows towards the max only
# while threads wait for one (a connection at a time), and closes one again every 10 minutes in
# which some sat unused (psycopg_pool's max_idle). So the max can be as large as the process's
# threads (behind RDS Proxy, where a client connection is cheap: no thread ever queues for one)
# without every process opening all of them at start, which at a deploy is tasks × processes × max
# at once. A request holds a connection only for its queries, so a few serve a process's usual
# load; 4 also covers the warm-up and a first burst, and a flash sale's surge pays the set-up of
# the rest once. DB_POOL_MIN_SIZE = DB_POOL_MAX_SIZE opens them all at start (the old behaviour).
DB_POOL_MIN_SIZE = env.int("DB_POOL_MIN_SIZE", default=min(DB_POOL_MAX_SIZE, 4))
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and DB_POOL_MAX_SIZE > 0:
    if not 0 <= DB_POOL_MIN_SIZE <= DB_POOL_MAX_SIZE:
        raise ImproperlyConfigured(
            f"DB_POOL_MIN_SIZE ({DB_POOL_MIN_SIZE}) must be from 0 to DB_POOL_MAX_SIZE ({DB_POOL_MAX_SIZE})"
        )
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps them; Django refuses both
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": DB_POOL_MIN_SIZE,
        "max_size": DB_POOL_MAX_SIZE,
        "timeout": env.float("DB_POOL_TIMEOUT_SECONDS", default=10),  # then OperationalError: a 503
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- A cache every web process shares (rate limits): Redis -----------------------------------
# Production has no default: a per-process cache would let each web task grant the full rate.
REDIS_URL = env("REDIS_URL")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="flashsale"),
        # A slow Redis must not hold a checkout: fail fast (the rate limit then lets requests through).
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
}

# --- Admin login throttling (django-axes) ------------------------------------------------------
# After AXES_FAILURE_LIMIT wrong passwords from one IP for one username, that pair is locked out
# for AXES_COOLOFF_HOURS. Attempts are kept in the database (visible in the admin).
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.25)
AXES_LOCKOUT_PARAMETERS = [["ip_address", "username"]]
AXES_RESET_ON_SUCCESS = True
# The IP is the client's, as the rate limits tell clients apart (TRUSTED_PROXY_COUNT, below): behind
# the ALB, REMOTE_ADDR would lock a username for everyone. core/client_ip.py says why not ipware's.
AXES_CLIENT_IP_CALLABLE = "core.client_ip.client_ip"

# --- Content-Security-Policy (django-csp) --------------------------------------------------------
# The storefront and the admin run no inline script; the API docs load their init script from a
# URL of their own (SpectacularSwaggerSplitView). Swagger UI sets inline styles and data: images,
# so only the docs page widens style-src/img-src (config/urls.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# --- Logs and metrics (observability/; docs/operations.md) -------------------------------------
# One line per record: JSON objects (production, log search) or aligned readable lines (`make run`).
# Lines about an order carry order_id, plus request_id on the web and task_id on the worker.
LOG_FORMAT = env("LOG_FORMAT", default="json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"structured": {"()": "observability.logging.formatter", "log_format": LOG_FORMAT}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    # One line per provider call and per SQS credential lookup is noise, not news.
    "loggers": {
        # Django's own console handler (DEBUG) would print its lines a second time, unstructured.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "httpx": {"level": "WARNING"},
        "botocore.credentials": {"level": "WARNING"},
    },
}
# Prometheus /metrics on a port of each process's own, never the public one: WEB_METRICS_PORT (read
# by config/gunicorn.py), WORKER_METRICS_PORT, SWEEPER_METRICS_PORT, RELAY_METRICS_PORT; 0 = off.
# Bound to METRICS_ADDR: loopback by default; in ECS 0.0.0.0, reachable only where the task's
# security group allows.
METRICS_ADDR = env("METRICS_ADDR", default="127.0.0.1")
WORKER_METRICS_PORT = env.int("WORKER_METRICS_PORT", default=0)
SWEEPER_METRICS_PORT = env.int("SWEEPER_METRICS_PORT", default=0)
RELAY_METRICS_PORT = env.int("RELAY_METRICS_PORT", default=0)
# The same metrics as CloudWatch embedded-metric-format lines on stdout (ECS, Lambda): no agent.
METRICS_EMF = env.bool("METRICS_EMF", default=False)
METRICS_EMF_NAMESPACE = env("METRICS_EMF_NAMESPACE", default="FlashSale")
METRICS_EMF_FLUSH_SECONDS = env.float("METRICS_EMF_FLUSH_SECONDS", default=10)

# --- Readiness (`GET /readyz`, observability/readiness.py) --------------------------------------
# A web process reuses its answer this long: however often it is probed, it costs one database
# query and one SQS call per this many seconds.
READYZ_CACHE_SECONDS = env.float("READYZ_CACHE_SECONDS", default=2)
# The SQS check: observability/ imports no app, so the wiring names the queue's own probe.
READYZ_SQS_PING = "queues.sqs.ping"

# --- Django REST framework ----------------------------------------------------------------------
# Proxies in front of the web that append to X-Forwarded-For: 0 locally, 1 (the ALB) in production.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
REST_FRAMEWORK = {
    # Guest checkout: the API is anonymous, so no session auth (and no CSRF) on it.
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "UNAUTHENTICATED_USER": None,
    # DRF's JSONParser with a nesting cap: a 400, not a RecursionError (core/parsers.py).
    "DEFAULT_PARSER_CLASSES": ["core.parsers.DepthLimitedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # The checkout's domain errors (orders/api/errors.py), then the API edge's (core/api.py).
    "EXCEPTION_HANDLER": "orders.api.errors.exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Clients are told apart by REMOTE_ADDR, or behind N trusted proxies (the ALB: 1) by the
    # address the outermost of them saw: X-Forwarded-For's N-th entry from the right. Never the
    # whole header: clients forge its left. The admin's lockout uses the same (core/client_ip.py).
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}

# Rate limits per client, in DRF's syntax ("20/min", "5/s", "1000/h"); "0" turns one off. Counted
# in the shared cache, so every web process and host adds to the same count (orders/api/throttling.py).
# A checkout costs a provider call; a status read costs one indexed query.
CHECKOUT_RATE_LIMIT = env("CHECKOUT_RATE_LIMIT", default="20/min")
# How long a web process refuses a product it saw sell out without asking the database
# (shop/soldout.py): the longest a customer is refused after units come back elsewhere. 0: off.
SOLD_OUT_CACHE_SECONDS = env.float("SOLD_OUT_CACHE_SECONDS", default=1.0)
# Customer emails (orders/notifications.py): printed locally; production sends through SES
# (EMAIL_BACKEND=django_ses.SESBackend, set by the stack); tests use Django's locmem outbox.
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Flash sale <shop@example.com>")
SHOP_BASE_URL = env("SHOP_BASE_URL", default="http://127.0.0.1:8000")  # the links in the emails
AWS_SES_REGION_NAME = env("AWS_SES_REGION_NAME", default=env("AWS_DEFAULT_REGION", default="us-east-1"))
# How old a web process's snapshot of the line may be when it tells an order its place
# (orders.selectors.queue_place): every waiting customer polls it. 0: read the line every time.
QUEUE_PLACE_CACHE_SECONDS = env.float("QUEUE_PLACE_CACHE_SECONDS", default=1.0)
ORDER_STATUS_RATE_LIMIT = env("ORDER_STATUS_RATE_LIMIT", default="300/min")
# Largest request body the API reads: a 50-line basket is about 4 KB. Larger is a 413 before parsing.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=16 * 1024)

SPECTACULAR_SETTINGS = {
    "TITLE": "Flash-sale checkout API",
    "DESCRIPTION": (
        "Guest checkout for a flash sale. Errors share one shape: "
        '`{"code": "<machine-readable>", "detail": "<for people>"}`, plus `errors` (field → messages) '
        "on a 400 and the stock figures on an `out_of_stock` 409."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Only the API: the docs views and the schema itself are not operations.
    "SCHEMA_PATH_PREFIX": "/api",
    "ENUM_NAME_OVERRIDES": {"OrderStatus": "orders.models.OrderStatus"},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "orders.api.schema.basket_limits",  # the basket's line limits, which DRF keeps to itself
    ],
}

# --- The shop -----------------------------------------------------------------------------------
SHOP_CURRENCY = env("SHOP_CURRENCY", default="USD")

# --- Payments -----------------------------------------------------------------------------------
PAYMENT_PROVIDER_URL = env("PAYMENT_PROVIDER_URL")
PAYMENT_PROVIDER_API_KEY = env("PAYMENT_PROVIDER_API_KEY")
PAYMENT_MAX_ATTEMPTS = env.int("PAYMENT_MAX_ATTEMPTS", default=5)

# The timeout chain (core/timeouts.py): give the independent values, the rest is derived;
# `manage.py check` refuses overrides that break it (orders/checks.py).
TIMEOUTS = Timeouts.derive(
    # A worker's charge may queue behind others at a provider that takes one charge at a time.
    payment=env.float("PAYMENT_TIMEOUT_SECONDS", default=120),
    # A sync checkout gives up waiting after this long (504); the order is charged in the background.
    sync_payment=env.float("SYNC_PAYMENT_TIMEOUT_SECONDS", default=30),
    web=env.int("WEB_TIMEOUT_SECONDS", default=120),
    lease=env.int("ORDER_LEASE_SECONDS", default=None),
    visibility=env.int("SQS_VISIBILITY_TIMEOUT", default=None),
    idempotency_lock=env.int("IDEMPOTENCY_LOCK_SECONDS", default=None),
    # The provider's own request timeout (the sandbox reads the same variable): after it, plus
    # PAYMENT_SETTLE_SECONDS' margin, every request sent with a key has settled there.
    provider=env.float("PAYMENT_PROVIDER_TIMEOUT_SECONDS", default=90),
    settle=env.int("PAYMENT_SETTLE_SECONDS", default=None),
)
PAYMENT_TIMEOUT_SECONDS = TIMEOUTS.payment
SYNC_PAYMENT_TIMEOUT_SECONDS = TIMEOUTS.sync_payment
WEB_TIMEOUT_SECONDS = TIMEOUTS.web  # gunicorn's --timeout (config/processes.py)
WEB_THREADS = env.int("WEB_THREADS", default=32)  # gunicorn's --threads per process
# A claimed order belongs to its worker this long; past it, it may be claimed again.
ORDER_LEASE_SECONDS = TIMEOUTS.lease
# Longer than the longest task run, so a message being worked on is not handed to a second worker.
SQS_VISIBILITY_TIMEOUT = TIMEOUTS.visibility
# A request holding an Idempotency-Key longer than this died.
IDEMPOTENCY_LOCK_SECONDS = TIMEOUTS.idempotency_lock
PAYMENT_PROVIDER_TIMEOUT_SECONDS = TIMEOUTS.provider
# After an unknown outcome, the order waits this long from the attempt's start before the next.
PAYMENT_SETTLE_SECONDS = TIMEOUTS.settle
# A provider lookup (is this key charged?) or a ledger page gives up after this.
PAYMENT_LOOKUP_TIMEOUT_SECONDS = env.float("PAYMENT_LOOKUP_TIMEOUT_SECONDS", default=10)

# The sync checkout's queue (orders/checkout_queue.py): admission control in front of the provider.
# A sync checkout is admitted while fewer than PAYMENT_PROVIDER_CONCURRENCY + SYNC_CHECKOUT_ON_DECK
# are in flight (shared in Redis by every web process); the rest get a 503 `checkout_queue` with
# their place in a FIFO line and a Retry-After, and nothing is created for them.
SYNC_CHECKOUT_QUEUE = env.bool("SYNC_CHECKOUT_QUEUE", default=True)
# Charges the provider runs at once (the sandbox reads the same variable); 0 = no limit, no queue.
PAYMENT_PROVIDER_CONCURRENCY = env.int("PAYMENT_PROVIDER_CONCURRENCY", default=1)
# Seconds a charge takes at the provider (L): Retry-After is (customers ahead − free) × L / concurrency.
SYNC_CHECKOUT_CHARGE_SECONDS = env.float("SYNC_CHECKOUT_CHARGE_SECONDS", default=3)
# Admitted requests waiting at the provider's door, so that a freed slot starts the next charge at
# once: enough for the charges of the 1.5 s the head of the line may take to come back (it retries
# every second), and at least one per slot.
SYNC_CHECKOUT_ON_DECK = env.int(
    "SYNC_CHECKOUT_ON_DECK",
    default=max(
        PAYMENT_PROVIDER_CONCURRENCY,
        math.ceil(1.5 * PAYMENT_PROVIDER_CONCURRENCY / max(SYNC_CHECKOUT_CHARGE_SECONDS, 0.01)),
    ),
)
SYNC_CHECKOUT_MAX_RETRY_AFTER = env.int("SYNC_CHECKOUT_MAX_RETRY_AFTER", default=10)
# A place in line lapses when its customer has not retried within their Retry-After plus this.
SYNC_CHECKOUT_ABANDON_SECONDS = env.int("SYNC_CHECKOUT_ABANDON_SECONDS", default=5)

# --- Celery on SQS ------------------------------------------------------------------------------
# In AWS the queue URLs are given and boto3 finds credentials itself. Locally SQS_ENDPOINT_URL
# points at the SQS-protocol server (moto) and the queue URLs follow from it.
SQS_ENDPOINT_URL = env("SQS_ENDPOINT_URL", default="")
SQS_REGION = env("AWS_DEFAULT_REGION", default="us-east-1")
SQS_QUEUE_NAME = env("SQS_QUEUE_NAME", default="flashsale-payments")
SQS_DLQ_NAME = env("SQS_DLQ_NAME", default=f"{SQS_QUEUE_NAME}-dlq")
_local_queue_base = f"{SQS_ENDPOINT_URL}/123456789012" if SQS_ENDPOINT_URL else None
if _local_queue_base:
    SQS_QUEUE_URL = env("SQS_QUEUE_URL", default=f"{_local_queue_base}/{SQS_QUEUE_NAME}")
    SQS_DLQ_URL = env("SQS_DLQ_URL", default=f"{_local_queue_base}/{SQS_DLQ_NAME}")
else:  # AWS: the queues are given, never guessed
    SQS_QUEUE_URL = env("SQS_QUEUE_URL")
    SQS_DLQ_URL = env("SQS_DLQ_URL")
SQS_MAX_RECEIVE_COUNT = env.int("SQS_MAX_RECEIVE_COUNT", default=5)

_endpoint = urlsplit(SQS_ENDPOINT_URL)
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=f"sqs://{_endpoint.netloc}")
CELERY_BROKER_TRANSPORT = "queues.sqs_transport:Transport"  # kombu's SQS, patched (see the module)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "region": SQS_REGION,
    "is_secure": _endpoint.scheme != "http",
    # Predefined: the app never creates or lists queues (`manage.py create_queues` does, locally).
    "predefined_queues": {SQS_QUEUE_NAME: {"url": SQS_QUEUE_URL}},
    "visibility_timeout": SQS_VISIBILITY_TIMEOUT,
    "wait_time_seconds": env.int("SQS_WAIT_TIME_SECONDS", default=5),
    # A freed thread waits this long for its next poll while the pool is saturated (0.1 s cost 3–6 % of
    # throughput at every worker count; 0.01 s sent no extra requests).
    "polling_interval": env.float("SQS_POLLING_INTERVAL", default=0.01),
    # Receives a worker keeps in flight while it has more than 10 free slots (queues/sqs_transport.py).
    "receive_polls": env.int("SQS_RECEIVE_POLLS", default=4),
    # boto3 for sends and acks: fail fast when SQS is unreachable (the sweeper re-publishes), but
    # leave reads longer than the long poll.
    "client-config": {
        "connect_timeout": 2,
        "read_timeout": 30,
        "retries": {"mode": "standard", "max_attempts": 2},
    },
}
CELERY_TASK_DEFAULT_QUEUE = SQS_QUEUE_NAME
CELERY_TASK_CREATE_MISSING_QUEUES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_ENABLE_REMOTE_CONTROL = False  # SQS has no broadcast
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
# Payments are I/O-bound: threads. Celery's CLI applies this setting even over an explicit
# `--pool=prefork`, so choose prefork with CELERY_WORKER_POOL=prefork.
CELERY_WORKER_POOL = env("CELERY_WORKER_POOL", default="threads")
CELERY_WORKER_CONCURRENCY = env.int("WORKER_CONCURRENCY", default=20)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# On a broker outage let running charges finish and record their result (the database is not the
# broker); their messages cannot be acked and come back later, where the claim turns them away.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# A broker outage must not hold the customer's request: fail fast, the sweeper enqueues later.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}

# The payment-jobs port (orders/jobs.py): the adapter that publishes jobs and counts them.
PAYMENT_JOBS_ADAPTER = "orders.sqs_jobs.SqsPaymentJobs"

# --- Recovery (the sweeper: `manage.py sweep_orders --every N`) -----------------------------
SWEEP_INTERVAL_SECONDS = env.float("SWEEP_INTERVAL_SECONDS", default=15)
# An accepted order SQS has not taken a payment job for (enqueued_at null) is the relay's; the
# sweeper publishes it too once this long has passed since it was placed or last handed on
# (updated_at): the backstop when no relay runs. Far longer than a relay's pass takes.
SWEEP_GRACE_SECONDS = env.float("SWEEP_GRACE_SECONDS", default=10)
# An accepted order still waiting this long gets a fresh job, in case its message was lost
# (a broker outage, the DLQ). Duplicates are harmless: only one attempt can claim the order.
ORDER_REQUEUE_AFTER_SECONDS = env.float("ORDER_REQUEUE_AFTER_SECONDS", default=300)
SWEEP_BATCH_SIZE = env.int("SWEEP_BATCH_SIZE", default=500)

# --- The outbox's relay (`manage.py relay_orders`: orders/relay.py) -----------------------------
# Threads per relay process, each passing over the null orders on its own connection. One thread
# in passes of up to 100 every 0.1 s spends half the CPU per order of two in passes of 50 every
# 0.05 s at a sale's rate (fuller SendMessageBatch requests, fewer transactions), and a quarter
# while idle (docs/flash-sale-path.md, "Fifth look"), and it kept up with the lab's ~300 accepts/s
# at saturation. The deploy sets its own (deploy/settings.py: 2 threads, passes of 50, sized by
# `deploy plan`).
RELAY_THREADS = env.int("RELAY_THREADS", default=1)
# Orders one pass takes and publishes (SendMessageBatch carries 10) while it holds their rows.
RELAY_BATCH_SIZE = env.int("RELAY_BATCH_SIZE", default=100)
# A pass that found less than a full batch waits this long before the next: the most an order
# waits for its pass, against a 3 s charge.
RELAY_INTERVAL_SECONDS = env.float("RELAY_INTERVAL_SECONDS", default=0.1)
# While SQS refuses (or the database fails), the wait doubles from the interval up to this.
RELAY_BACKOFF_MAX_SECONDS = env.float("RELAY_BACKOFF_MAX_SECONDS", default=5)
# A relay thread that finishes no pass in this long (stuck in a call) stops the relay's heartbeat,
# so that its container's health check replaces the task. Longer than a pass and its backoff take.
RELAY_STALL_SECONDS = env.float("RELAY_STALL_SECONDS", default=30)

# --- Idempotent checkout (Idempotency-Key header) --------------------------------------------
IDEMPOTENCY_KEY_TTL_SECONDS = env.int("IDEMPOTENCY_KEY_TTL_SECONDS", default=24 * 3600)
