"""Settings: the embedded default, production variables, and `check --deploy`.

Each case runs in a subprocess with a clean environment, because settings are read
once at start-up.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)
REQUIRED = ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS", "AUDIT_CHAIN_KEY")

PROBE = """
import json, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
import django
django.setup()
from django.conf import settings as s
from portal.celery import app
db = s.DATABASES["default"]
print(json.dumps({
    "engine": db["ENGINE"], "name": str(db["NAME"]), "debug": s.DEBUG,
    "eager": s.CELERY_TASK_ALWAYS_EAGER, "app_eager": app.conf.task_always_eager,
    "broker": s.CELERY_BROKER_URL, "email": s.EMAIL_BACKEND, "demo": s.DEMO_ALLOWED,
    "mfa_admins": s.REQUIRE_MFA_FOR_ADMINS, "signup": s.ACCOUNT_ALLOW_SIGNUP,
    "cache": s.CACHES["default"]["BACKEND"], "session_age": s.SESSION_COOKIE_AGE,
    "secure_cookies": s.SESSION_COOKIE_SECURE and s.CSRF_COOKIE_SECURE,
    "ssl_redirect": s.SECURE_SSL_REDIRECT, "hosts": s.ALLOWED_HOSTS,
    "log_format": s.LOGGING["handlers"]["console"]["formatter"],
}))
"""


def clean_env(**extra: str) -> dict[str, str]:
    """Only what a process needs to run; no DATABASE_URL, REDIS_URL, ... from the test run."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
    env.update(extra)
    return env


def production_env(**overrides: str) -> dict[str, str]:
    values = {
        "TOLLGATE_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "DATABASE_URL": "postgres://tollgate:pw@db.internal:5432/tollgate",
        "REDIS_URL": "redis://redis.internal:6379/0",
        "ALLOWED_HOSTS": "tollgate.example.com",
        "AUDIT_CHAIN_KEY": secrets.token_urlsafe(32),
    }
    values.update(overrides)
    return clean_env(**{k: v for k, v in values.items() if v is not None})


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )


def probe(env: dict[str, str]) -> dict:
    result = run(["-c", PROBE], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_embedded_default_is_sqlite_in_var_with_eager_tasks():
    values = probe(clean_env())

    assert values["engine"] == "django.db.backends.sqlite3"
    assert values["name"] == str(BASE_DIR / "var" / "tollgate.sqlite3")
    assert values["eager"] is True
    assert values["app_eager"] is True
    assert values["broker"] == "memory://"
    assert values["email"] == "django.core.mail.backends.console.EmailBackend"
    assert values["debug"] is True
    assert values["demo"] is True
    assert values["mfa_admins"] is False
    assert values["signup"] is False
    assert values["cache"] == "django.core.cache.backends.locmem.LocMemCache"
    assert values["log_format"] == "text"


def test_sqlite_database_url_with_an_absolute_path_works(tmp_path):
    db_file = tmp_path / "x.sqlite3"
    url = f"sqlite:///{db_file}"
    assert url.startswith("sqlite:////")

    values = probe(clean_env(DATABASE_URL=url))
    assert values["engine"] == "django.db.backends.sqlite3"
    assert values["name"] == str(db_file)

    env = clean_env(DATABASE_URL=url, AUDIT_CHECKPOINT_FILE=str(tmp_path / "cp.jsonl"))
    migrate = run(["manage.py", "migrate", "--noinput", "-v0"], env)
    assert migrate.returncode == 0, migrate.stderr
    assert db_file.exists()
    verify = run(["manage.py", "verify_audit"], env)
    assert verify.returncode == 0, verify.stderr
    assert "audit chain OK: 0 events" in verify.stdout


def test_production_with_every_variable_set_starts_hardened():
    values = probe(production_env())

    assert values["engine"] == "django.db.backends.postgresql"
    assert values["debug"] is False
    assert values["eager"] is False
    assert values["app_eager"] is False
    assert values["broker"] == "redis://redis.internal:6379/0"
    assert values["demo"] is False
    assert values["mfa_admins"] is True
    assert values["signup"] is False
    assert values["secure_cookies"] is True
    assert values["ssl_redirect"] is True
    assert values["hosts"] == ["tollgate.example.com"]
    assert values["log_format"] == "json"
    assert values["cache"] == "portal.core.cache.RedisCache"  # Django's, one client per pool


@pytest.mark.parametrize("missing", REQUIRED)
def test_production_refuses_to_start_naming_the_missing_variable(missing):
    result = run(["-c", PROBE], production_env(**{missing: None}))

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"missing required environment variable(s): {missing} " in result.stderr
    for other in set(REQUIRED) - {missing}:
        assert f"variable(s): {other}" not in result.stderr


def test_production_with_an_empty_secret_is_refused_like_a_missing_one():
    result = run(["manage.py", "check"], production_env(SECRET_KEY=""))
    assert result.returncode != 0
    assert "missing required environment variable(s): SECRET_KEY" in result.stderr


def test_production_with_nothing_set_names_every_missing_variable():
    result = run(["-c", PROBE], clean_env(TOLLGATE_ENV="production"))
    assert result.returncode != 0
    assert (
        "variable(s): SECRET_KEY, DATABASE_URL, REDIS_URL, ALLOWED_HOSTS, AUDIT_CHAIN_KEY"
        in result.stderr
    )


def test_unknown_environment_name_is_refused():
    result = run(["-c", PROBE], clean_env(TOLLGATE_ENV="prod"))
    assert result.returncode != 0
    assert "TOLLGATE_ENV must be 'development' or 'production', not 'prod'" in result.stderr


def test_check_deploy_is_clean_with_production_variables():
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNINGS" not in result.stdout + result.stderr
    assert "security.W" not in result.stdout + result.stderr


def test_check_deploy_warns_on_the_embedded_default():
    """Proves the check above is meaningful: without production variables it does warn."""
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], clean_env())

    assert result.returncode != 0
    assert "security.W018" in result.stderr  # DEBUG on
