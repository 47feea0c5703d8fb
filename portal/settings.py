"""Tollgate settings: one django-environ ``env``; production differs only by variables.

With no variables set the portal runs on the *embedded default*: SQLite in ``var/``,
Celery tasks executed eagerly in-process, console e-mail, DEBUG on, demo allowed.
``TOLLGATE_ENV=production`` switches the defaults to production and refuses to start
while a required secret is missing (the error names it).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

TOLLGATE_ENV = env.str("TOLLGATE_ENV", default="development")
if TOLLGATE_ENV not in {"development", "production"}:
    raise ImproperlyConfigured(
        f"TOLLGATE_ENV must be 'development' or 'production', not {TOLLGATE_ENV!r}"
    )
PRODUCTION = TOLLGATE_ENV == "production"

REQUIRED_IN_PRODUCTION = (
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "ALLOWED_HOSTS",
    "AUDIT_CHAIN_KEY",
)
if PRODUCTION:
    _missing = [name for name in REQUIRED_IN_PRODUCTION if not env.str(name, default="")]
    if _missing:
        raise ImproperlyConfigured(
            "Tollgate refuses to start in production: missing required environment "
            f"variable(s): {', '.join(_missing)} (see .env.example)"
        )

DEBUG = env.bool("DEBUG", default=not PRODUCTION)
SECRET_KEY = env.str(
    "SECRET_KEY",
    default="embedded-default-insecure-key-do-not-use-in-production-8f2c1d9e7b6a5f4e3d2c1b0a",
)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
DEMO_ALLOWED = env.bool("DEMO_ALLOWED", default=not PRODUCTION)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "allauth.mfa",
    "rest_framework",
    "drf_spectacular",
    "django_filters",
    "django_htmx",
    "csp",
    "portal.core",
    "audit",
    "accounts",
    "access",
    "reviews",
    "tokens",
    "costs",
    "patterns",
    "usage",
    "standards",
    "recommend",
    "scim",
    "integrations",
    "gitops",  # configuration as code: config_export / config_plan / config_apply (docs/GITOPS.md)
    "oncall",  # on-call rotas: grants that follow the shift (docs/ONCALL.md)
]
if DEMO_ALLOWED:  # dev-only: the demo data and its seed_demo command; never in production
    INSTALLED_APPS.append("demo")
if env.bool("SAML_ENABLED", default=False):  # needs the `saml` extra (python3-saml, xmlsec)
    INSTALLED_APPS.append("allauth.socialaccount.providers.saml")

MIDDLEWARE = [
    "portal.core.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.core.middleware.RequestUserContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.AdminMFAMiddleware",
    "portal.core.middleware.LoginRequiredByDefaultMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
ASGI_APPLICATION = "portal.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
                "portal.core.context_processors.portal",
            ],
        },
    },
]
# Form errors: non-field errors in a role="alert" region (field errors are tied to their
# widgets by Django itself: aria-invalid, aria-describedby -> <id>_error).
FORM_RENDERER = "portal.core.forms.FormRenderer"

# --- Database -------------------------------------------------------------------------
VAR_DIR.mkdir(exist_ok=True)
(VAR_DIR / "staticfiles").mkdir(exist_ok=True)
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'tollgate.sqlite3'}")
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False  # services own their transactions
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL plus a busy timeout lets the web process and an in-process task share the file.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault(
        "init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    )
    DATABASES["default"]["OPTIONS"].setdefault("timeout", 20)
    DATABASES["default"]["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, Celery --------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "portal.core.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="tollgate"),
            "TIMEOUT": 300,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=300)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=360)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "access.tasks.*": {"queue": "sync"},
    "connectors.*": {"queue": "sync"},
    "costs.tasks.*": {"queue": "ingest"},
    "portal.core.tasks.*": {"queue": "default"},
    "audit.tasks.*": {"queue": "default"},
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {"task": "portal.core.tasks.heartbeat", "schedule": 15.0},
    "audit-checkpoint": {"task": "audit.tasks.audit_checkpoint", "schedule": 300.0},
    "access-sweep-pending": {"task": "access.tasks.sweep_pending_requests", "schedule": 900.0},
    "costs-watch-folder": {"task": "costs.tasks.watch_folder_scan", "schedule": 60.0},
}
# /readyz requires a fresh worker heartbeat only when this is set (production sets it).
READYZ_REQUIRE_WORKER = env.bool("READYZ_REQUIRE_WORKER", default=False)
WORKER_HEARTBEAT_MAX_AGE = env.int("WORKER_HEARTBEAT_MAX_AGE", default=60)

# --- Auth -----------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "accounts.adapters.SocialAccountAdapter"
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_RATE_LIMITS = {"login_failed": "10/m/ip,5/5m/key"}
# Employees come from the HR directory: open sign-up is off unless explicitly allowed.
ACCOUNT_ALLOW_SIGNUP = env.bool("ACCOUNT_ALLOW_SIGNUP", default=False)
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Tollgate"
# Platform admins, security members and staff need a session that passed a second factor
# before any change, the admin site or the audit export (accounts.middleware).
REQUIRE_MFA_FOR_ADMINS = env.bool("REQUIRE_MFA_FOR_ADMINS", default=PRODUCTION)

SOCIALACCOUNT_ONLY = False
# SSO links a first sign-in to an existing person only on a verified e-mail, or when the
# provider (by id) is listed here as trusted for e-mail.
TOLLGATE_SSO_TRUSTED_PROVIDERS = env.list("TOLLGATE_SSO_TRUSTED_PROVIDERS", default=[])
SOCIALACCOUNT_PROVIDERS: dict = {}

# SCIM 2.0 (scim app, /scim/v2/): identity providers push people and teams. A push that would
# make more than this share of active people leavers within an hour is held for an admin's
# confirmation (but up to TOLLGATE_SCIM_LEAVER_FLOOR leavers an hour are never held).
TOLLGATE_SCIM_MAX_LEAVER_SHARE = env.float("TOLLGATE_SCIM_MAX_LEAVER_SHARE", default=0.10)
TOLLGATE_SCIM_LEAVER_FLOOR = env.int("TOLLGATE_SCIM_LEAVER_FLOOR", default=2)
# Requests per minute per SCIM client (429 beyond); an initial push of thousands needs more.
TOLLGATE_SCIM_RATE_PER_MINUTE = env.int("TOLLGATE_SCIM_RATE_PER_MINUTE", default=1200)
# The home team of a person pushed without a department.
TOLLGATE_SCIM_DEFAULT_TEAM = env.str("TOLLGATE_SCIM_DEFAULT_TEAM", default="unassigned")
if env.str("OIDC_CLIENT_ID", default=""):
    SOCIALACCOUNT_PROVIDERS["openid_connect"] = {
        "APPS": [
            {
                "provider_id": env.str("OIDC_PROVIDER_ID", default="sso"),
                "name": env.str("OIDC_PROVIDER_NAME", default="Company SSO"),
                "client_id": env.str("OIDC_CLIENT_ID"),
                "secret": env.str("OIDC_CLIENT_SECRET"),
                "settings": {"server_url": env.str("OIDC_SERVER_URL")},
            }
        ]
    }
if env.bool("SAML_ENABLED", default=False):
    SOCIALACCOUNT_PROVIDERS["saml"] = {
        "APPS": [
            {
                "provider_id": env.str("SAML_PROVIDER_ID", default="saml"),
                "name": env.str("SAML_PROVIDER_NAME", default="Company SAML"),
                "client_id": env.str("SAML_ORGANIZATION", default="tollgate"),
                "settings": {
                    "idp": {"metadata_url": env.str("SAML_IDP_METADATA_URL")},
                    "attribute_mapping": {"email": "email", "name": "name"},
                },
            }
        ]
    }

SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=int(timedelta(hours=12).total_seconds()))
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = False  # HTMX reads the token from the <body hx-headers> attribute

# --- Security headers -----------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=PRODUCTION)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if PRODUCTION else None
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = PRODUCTION
SECURE_HSTS_PRELOAD = PRODUCTION
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        # Plotly injects <style> elements for its own layout.
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}

# --- Static files ---------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION
MEDIA_ROOT = env.path("MEDIA_ROOT", default=VAR_DIR / "media")

# --- E-mail ---------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="tollgate@tollgate.test")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- I18N -----------------------------------------------------------------------------
LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- REST framework -------------------------------------------------------------------
REST_FRAMEWORK = {
    # Bearer first: its WWW-Authenticate header makes unauthenticated calls 401, not 403.
    # SessionAuthentication enforces CSRF for browser calls.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tokens.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "tokens.permissions.TokenScopes",
    ],
    # Every operation documents the problem+json answers it can give (portal.core.api).
    "DEFAULT_SCHEMA_CLASS": "portal.core.api.ProblemAutoSchema",
    # ?limit= at most 500 (more is a 400 naming it), ?offset= at most 1,000,000.
    "DEFAULT_PAGINATION_CLASS": "portal.core.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 50,
    # Bounded work per caller: a fixed window per API token (per person for a session), one
    # cache increment per call; over the rate is 429 problem+json with Retry-After. The check
    # API (service tokens only, its own latency target) is not throttled.
    "DEFAULT_THROTTLE_CLASSES": ["portal.core.throttling.TokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": "600/minute"},
    "EXCEPTION_HANDLER": "portal.core.api.problem_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tollgate API",
    "DESCRIPTION": "Access control and cost attribution portal",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

# --- Access ---------------------------------------------------------------------------
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://127.0.0.1:8000")
# Slack-compatible incoming webhook for approver and requester notifications (empty = off).
CHAT_WEBHOOK_URL = env.str("CHAT_WEBHOOK_URL", default="")
# Check API (A10): seconds a cached answer lives (±20 %); grant changes invalidate at once.
CHECK_CACHE_TTL = env.int("CHECK_CACHE_TTL", default=300)
# Check API: keep hot answers in each worker's memory, dropped by Redis pub/sub the moment
# they change (portal.core.nearcache). Needs Redis; off = every check asks Redis.
CACHE_NEAR = env.bool("CACHE_NEAR", default=True)

# --- Connectors (A6; docs/CONNECTORS.md) ---------------------------------------------
# Name -> class; a service names one in Service.connector. Secrets never live in a
# service's connector_config: it names environment variables (e.g. "dsn_env"), which must
# start with TOLLGATE_CONNECTOR_ENV_PREFIX so a config cannot read the portal's own secrets.
TOLLGATE_CONNECTORS = {
    "postgres": "connectors.postgres.PostgresRoleConnector",
    "webhook": "connectors.webhook.WebhookConnector",
    "manual": "connectors.manual.ManualConnector",
    "scim": "connectors.scim.ScimConnector",
}
if not PRODUCTION:  # in-memory, per process: tests and the demo only
    TOLLGATE_CONNECTORS["fake"] = "connectors.fake.FakeConnector"
TOLLGATE_CONNECTOR_ENV_PREFIX = "TOLLGATE_"
# LDAP groups (groupOfNames / posixGroup) over LDAPS or StartTLS; docs/CONNECTORS.md.
TOLLGATE_CONNECTORS["ldap"] = "connectors.ldap.LdapGroupConnector"

# --- Provisioning outbox, reconciliation, expiry (A5-A8; docs/PROVISIONING.md) --------
TOLLGATE_SYNC_QUEUE = env.str("TOLLGATE_SYNC_QUEUE", default="sync")
TOLLGATE_NOTIFY_QUEUE = env.str("TOLLGATE_NOTIFY_QUEUE", default="notify")
TOLLGATE_SYNC_MAX_ATTEMPTS = env.int("TOLLGATE_SYNC_MAX_ATTEMPTS", default=8)
TOLLGATE_SYNC_BACKOFF_BASE = env.float("TOLLGATE_SYNC_BACKOFF_BASE", default=5.0)  # seconds
TOLLGATE_SYNC_BACKOFF_CAP = env.float("TOLLGATE_SYNC_BACKOFF_CAP", default=600.0)
TOLLGATE_SYNC_SOFT_TIME_LIMIT = env.int("TOLLGATE_SYNC_SOFT_TIME_LIMIT", default=60)
TOLLGATE_SYNC_TIME_LIMIT = env.int("TOLLGATE_SYNC_TIME_LIMIT", default=90)
# A running job whose worker vanished (SIGKILL, OOM) is re-queued after this lease.
TOLLGATE_SYNC_LEASE_SECONDS = env.int("TOLLGATE_SYNC_LEASE_SECONDS", default=120)
# The sweeper re-enqueues pending jobs whose message is this late (lost message).
TOLLGATE_SYNC_SWEEP_GRACE_SECONDS = env.int("TOLLGATE_SYNC_SWEEP_GRACE_SECONDS", default=30)
TOLLGATE_BREAK_GLASS_MAX_HOURS = env.int("TOLLGATE_BREAK_GLASS_MAX_HOURS", default=4)
TOLLGATE_FOLLOW_UP_DAYS = env.int("TOLLGATE_FOLLOW_UP_DAYS", default=3)
TOLLGATE_EXPIRY_REMINDER_DAYS = (7, 1)
CELERY_BEAT_SCHEDULE["access-sync-sweep"] = {
    "task": "access.tasks.sweep_sync_jobs",
    "schedule": 30.0,
}
CELERY_BEAT_SCHEDULE["access-expire-grants"] = {
    "task": "access.tasks.expire_grants",
    "schedule": 300.0,
}
CELERY_BEAT_SCHEDULE["access-reconcile-all"] = {
    "task": "access.tasks.reconcile_all",
    "schedule": 3600.0,
}
CELERY_BEAT_SCHEDULE["access-connector-health"] = {
    "task": "access.tasks.probe_connector_health",
    "schedule": 300.0,
}
CELERY_BEAT_SCHEDULE["access-follow-ups"] = {
    "task": "access.tasks.sweep_follow_ups",
    "schedule": 900.0,
}
# On-call access (docs/ONCALL.md): grants at a shift's start, revoked at its end plus grace.
CELERY_BEAT_SCHEDULE["oncall-sweep"] = {"task": "oncall.tasks.sweep_oncall", "schedule": 60.0}
# Requestable bundles: assignment rules grant and remove as people move (docs/BUNDLES.md).
CELERY_BEAT_SCHEDULE["access-bundle-assignments"] = {
    "task": "access.tasks.sweep_bundle_assignments",
    "schedule": 3600.0,
}
# Access reviews (A9): start due campaigns, remind, escalate, apply deadlines, close.
CELERY_BEAT_SCHEDULE["reviews-sweep"] = {"task": "reviews.tasks.reviews_sweep", "schedule": 900.0}
# Standards as policy (P6): evaluate every standard, upsert violations, snapshot scores.
CELERY_BEAT_SCHEDULE["standards-scan"] = {
    "task": "standards.tasks.standards_scan",
    "schedule": 3600.0,
}
CELERY_TASK_ROUTES["standards.tasks.*"] = {"queue": "reports"}
# Approval recommendations (P5): retrain on every human decision so far.
CELERY_BEAT_SCHEDULE["recommend-retrain"] = {
    "task": "recommend.tasks.retrain_model",
    "schedule": 3600.0,
}

# --- Unused access (P4; docs/UNUSED_ACCESS.md) ----------------------------------------
# A grant is unused when not used for WINDOW days, older than the window and the GRACE for new
# grants, and its service has usage data no older than USAGE_STALE_HOURS covering the window.
TOLLGATE_UNUSED_WINDOW_DAYS = env.int("TOLLGATE_UNUSED_WINDOW_DAYS", default=90)
TOLLGATE_UNUSED_GRACE_DAYS = env.int("TOLLGATE_UNUSED_GRACE_DAYS", default=14)
TOLLGATE_UNUSED_NOTICE_DAYS = env.int("TOLLGATE_UNUSED_NOTICE_DAYS", default=7)
TOLLGATE_UNUSED_OPT_OUT_MAX_DAYS = env.int("TOLLGATE_UNUSED_OPT_OUT_MAX_DAYS", default=90)
TOLLGATE_UNUSED_RESTORE_DAYS = env.int("TOLLGATE_UNUSED_RESTORE_DAYS", default=30)
TOLLGATE_USAGE_STALE_HOURS = env.int("TOLLGATE_USAGE_STALE_HOURS", default=48)
# CloudTrail-style files dropped into <TOLLGATE_USAGE_WATCH_DIR>/<source-slug>/ are imported.
TOLLGATE_USAGE_WATCH_DIR = env.path("TOLLGATE_USAGE_WATCH_DIR", default=VAR_DIR / "usage-inbox")
# The most one usage-event file may hold once decompressed; counted while a .gz is inflated.
TOLLGATE_USAGE_MAX_BYTES = env.int("TOLLGATE_USAGE_MAX_BYTES", default=512 * 1024**2)
CELERY_BEAT_SCHEDULE["usage-collect"] = {"task": "usage.tasks.collect_usage", "schedule": 3600.0}
CELERY_BEAT_SCHEDULE["usage-watch-folder"] = {
    "task": "usage.tasks.watch_folder_scan",
    "schedule": 300.0,
}
CELERY_BEAT_SCHEDULE["usage-unused-daily"] = {
    "task": "usage.tasks.unused_daily",
    "schedule": 86400.0,
}

# --- Costs ----------------------------------------------------------------------------
# FOCUS files dropped into <COSTS_WATCH_DIR>/<source-name>/ are imported by a beat task.
COSTS_WATCH_DIR = env.path("COSTS_WATCH_DIR", default=VAR_DIR / "focus-inbox")
COSTS_WATCH_SETTLE_SECONDS = env.int("COSTS_WATCH_SETTLE_SECONDS", default=5)
COSTS_UPLOAD_MAX_BYTES = env.int("COSTS_UPLOAD_MAX_BYTES", default=2 * 1024**3)
# The most a compressed FOCUS file (gzip, Parquet) may expand to; counted while decompressing.
COSTS_DECOMPRESSED_MAX_BYTES = env.int("COSTS_DECOMPRESSED_MAX_BYTES", default=32 * 1024**3)

# --- Cost analytics (C3-C7; docs/COST_ANALYTICS.md) -----------------------------------
# Anomalies: a day is anomalous when (actual - expected) / robust scale >= SENSITIVITY and
# actual - expected >= MIN_IMPACT (billing currency, per team x service and day).
COST_ANOMALY_SENSITIVITY = env.float("COST_ANOMALY_SENSITIVITY", default=4.0)
COST_ANOMALY_MIN_IMPACT = env.float("COST_ANOMALY_MIN_IMPACT", default=25.0)
# Suggestions: ignore anything saving or costing less than this a month.
COST_SUGGESTION_MIN_MONTHLY = env.int("COST_SUGGESTION_MIN_MONTHLY", default=20)
CELERY_IMPORTS = ("costs.analytics.tasks",)
CELERY_TASK_ROUTES["costs.analytics.tasks.*"] = {"queue": "reports"}
CELERY_TASK_ROUTES["patterns.tasks.*"] = {"queue": "reports"}  # role-mining runs (P2)
# Mining runs whose worker died are failed, and lost messages re-sent (P2).
CELERY_BEAT_SCHEDULE["patterns-sweep-runs"] = {
    "task": "patterns.tasks.sweep_mining_runs",
    "schedule": 300.0,
}
CELERY_BEAT_SCHEDULE["costs-analytics-daily"] = {
    "task": "costs.analytics.tasks.cost_analytics_daily",
    "schedule": 3600.0,  # hourly: cheap when nothing changed; alerts soon after an import
}
CELERY_BEAT_SCHEDULE["costs-digest-weekly"] = {
    "task": "costs.analytics.tasks.cost_digest_weekly",
    "schedule": __import__("celery.schedules").schedules.crontab(
        minute=0, hour=7, day_of_week="mon"
    ),
}

# --- Audit ----------------------------------------------------------------------------
# Set to an empty value to keep checkpoints in the log only (no file).
_audit_checkpoint_file = env.str(
    "AUDIT_CHECKPOINT_FILE", default=str(VAR_DIR / "audit-checkpoints.jsonl")
)
AUDIT_CHECKPOINT_FILE = Path(_audit_checkpoint_file) if _audit_checkpoint_file else None
# SIEM stream: new events are shipped in order, at least once, to a webhook (POST
# {"events": [...]}) and/or appended to a JSON-lines file. Both empty: the stream is off.
# The audit chain is an HMAC chain under this key (and export manifests are signed with it), so
# write access to the database alone cannot recompute it. Required in production; the embedded
# default uses a fixed development key.
AUDIT_CHAIN_KEY = env.str("AUDIT_CHAIN_KEY", default="embedded-default-audit-chain-key-not-secret")
AUDIT_SIEM_WEBHOOK_URL = env.str("AUDIT_SIEM_WEBHOOK_URL", default="")
AUDIT_SIEM_FILE = env.str("AUDIT_SIEM_FILE", default="")
AUDIT_SIEM_BATCH_SIZE = env.int("AUDIT_SIEM_BATCH_SIZE", default=500)
AUDIT_SIEM_TIMEOUT = env.float("AUDIT_SIEM_TIMEOUT", default=10.0)
CELERY_BEAT_SCHEDULE["audit-siem-ship"] = {
    "task": "audit.tasks.audit_siem_ship",
    "schedule": 30.0,
}

# --- Logging --------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="json" if PRODUCTION else "text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "portal.core.logging.RequestContextFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_context"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "portal.audit": {"level": "INFO"},
        # One INFO line per HTTP request of the SCIM connector (with e-mail addresses in its
        # filters) is noise in the worker's log; failures surface as sync job errors.
        "httpx2": {"level": "WARNING"},
    },
}

# --- Observability (O5; docs/OPERATIONS.md) -------------------------------------------
# /metrics answers a caller sending `Authorization: Bearer <METRICS_TOKEN>` (when set), or one
# whose address is in METRICS_ALLOWED_NETWORKS (CIDRs; loopback only by default). Under
# gunicorn set PROMETHEUS_MULTIPROC_DIR (read by prometheus-client itself) so that every
# worker's counts add up; deploy/gunicorn.conf.py empties it at start.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"])
# The Celery queues whose depth /metrics reports (LLEN on the broker at each scrape).
METRICS_QUEUES = env.list(
    "METRICS_QUEUES", default=["default", "sync", "ingest", "notify", "reports"]
)
MIDDLEWARE.insert(0, "portal.core.metrics.MetricsMiddleware")  # outermost: times everything
# The audit chain is verified by the beat (the result feeds /metrics and its alert).
CELERY_BEAT_SCHEDULE["audit-verify"] = {
    "task": "audit.tasks.audit_verify",
    "schedule": env.float("AUDIT_VERIFY_INTERVAL", default=6 * 3600.0),
}
# A second home for the audit checkpoints: each is POSTed (JSON, HMAC-SHA256 of the body
# under AUDIT_CHAIN_KEY in X-Tollgate-Signature) to this URL as well as the file; empty = off.
AUDIT_CHECKPOINT_URL = env.str("AUDIT_CHECKPOINT_URL", default="")
AUDIT_CHECKPOINT_TIMEOUT = env.float("AUDIT_CHECKPOINT_TIMEOUT", default=5.0)
# OpenTelemetry traces (Django, Celery, psycopg, Redis) over OTLP/HTTP to this endpoint
# (e.g. http://otel-collector:4318); empty = off, and nothing of OpenTelemetry is imported.
OTEL_EXPORTER_OTLP_ENDPOINT = env.str("OTEL_EXPORTER_OTLP_ENDPOINT", default="")
OTEL_SERVICE_NAME = env.str("OTEL_SERVICE_NAME", default="tollgate")

# --- LDAP directory source (issue #18; docs/DIRECTORY.md "LDAP source") ----------------------
# A JSON object (url, security, ca_file, bind_dn, password_env, people_base, people_filter,
# attributes, team_groups_base, ...); empty = off. The bind password is in the environment
# variable it names. Runs every INTERVAL seconds (incremental by modifyTimestamp), full every
# FULL_EVERY seconds; the mass-leave hold uses TOLLGATE_SCIM_MAX_LEAVER_SHARE / _LEAVER_FLOOR.
TOLLGATE_LDAP_DIRECTORY = env.json("TOLLGATE_LDAP_DIRECTORY", default={})
TOLLGATE_LDAP_DIRECTORY_INTERVAL = env.float("TOLLGATE_LDAP_DIRECTORY_INTERVAL", default=900.0)
TOLLGATE_LDAP_DIRECTORY_FULL_EVERY = env.int("TOLLGATE_LDAP_DIRECTORY_FULL_EVERY", default=86_400)
CELERY_BEAT_SCHEDULE["accounts-ldap-directory"] = {
    "task": "accounts.tasks.ldap_directory_sync",
    "schedule": TOLLGATE_LDAP_DIRECTORY_INTERVAL,
}
# The demo's own slapd (demo/steps/ldap.py; `make run` sets the directory): data directory
# (empty = no LDAP in the demo) and loopback port (LDAPS on the next one).
TOLLGATE_DEMO_LDAP_DIR = env.str("TOLLGATE_DEMO_LDAP_DIR", default="")
TOLLGATE_DEMO_LDAP_PORT = env.int("TOLLGATE_DEMO_LDAP_PORT", default=3389)

# --- Slack (issue #19; docs/SLACK.md) -------------------------------------------------
# Approvals from Slack: DMs with buttons, /access, messages kept in step with decisions. Slack
# is on only when both secrets are set; without them nothing is sent and the endpoints refuse.
SLACK_BOT_TOKEN = env.str("SLACK_BOT_TOKEN", default="")
SLACK_SIGNING_SECRET = env.str("SLACK_SIGNING_SECRET", default="")
# The Web API's base URL (the tests point it at a local server standing in for Slack).
SLACK_API_BASE_URL = env.str("SLACK_API_BASE_URL", default="https://slack.com/api/")
SLACK_TIMEOUT = env.float("SLACK_TIMEOUT", default=5.0)
CELERY_TASK_ROUTES["integrations.tasks.*"] = {"queue": "notify"}
CELERY_BEAT_SCHEDULE["integrations-slack-sweep"] = {
    "task": "integrations.tasks.slack_sweep",
    "schedule": 60.0,
}

# Configuration as code (docs/GITOPS.md): where the repository lives (named in the refusal a
# person sees when editing a managed object in the UI) and, per object kind, whether UI edits
# of managed objects are refused ("refuse") or allowed and reported by the next plan ("drift").
GITOPS_REPOSITORY_URL = env.str("GITOPS_REPOSITORY_URL", default="")
GITOPS_UI_EDITS = {
    "standard": "drift",
    "budget": "drift",
    "attribution_rule": "drift",
}
