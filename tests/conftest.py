"""Shared fixtures: personas, and the Celery mode for unit vs integration tests."""

from __future__ import annotations

import datetime as dt
import os

import pytest
import time_machine
from django.db.backends.postgresql.operations import (
    DatabaseOperations as PostgresOperations,
)

from accounts.models import PlatformRole, Team, User
from portal.celery import app as celery_app

from .factories import PASSWORD, TeamFactory, UserFactory  # noqa: F401 (PASSWORD: re-export)

_AUDIT_TABLE = "audit_auditevent"
_NO_TRUNCATE = "audit_event_no_truncate"
_sql_flush = PostgresOperations.sql_flush


def _sql_flush_past_the_audit_trigger(self, style, tables, **options):
    """Transactional tests end with a flush (TRUNCATE of every table), which the audit table's
    trigger refuses, as it should in production; the test flush lifts it for that statement."""
    sql = _sql_flush(self, style, tables, **options)
    if _AUDIT_TABLE not in tables or not sql:
        return sql
    return [
        f"ALTER TABLE {_AUDIT_TABLE} DISABLE TRIGGER {_NO_TRUNCATE}",
        *sql,
        f"ALTER TABLE {_AUDIT_TABLE} ENABLE TRIGGER {_NO_TRUNCATE}",
    ]


PostgresOperations.sql_flush = _sql_flush_past_the_audit_trigger  # type: ignore[method-assign]

#: The instant every test starts at (the clock then ticks on from it), so that no test depends
#: on the day it runs. ``TOLLGATE_TEST_NOW`` moves it (ISO 8601) to run the suite at another date.
FROZEN_AT = dt.datetime.fromisoformat(
    os.environ.get("TOLLGATE_TEST_NOW", "2026-06-17T10:00:00+00:00")
)

#: Dates that have bitten date code before: the tests of costs and expiry run at each of them.
#: TIME_ZONE is UTC, so the DST dates are ordinary days here; they guard a change of zone.
TRICKY_DATES = {
    "first-of-month": dt.datetime(2026, 3, 1, 0, 30, tzinfo=dt.UTC),
    "third-of-month": dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC),
    "last-of-30-day-month": dt.datetime(2026, 4, 30, 23, 30, tzinfo=dt.UTC),
    "last-of-31-day-month": dt.datetime(2026, 5, 31, 23, 30, tzinfo=dt.UTC),
    "28-february": dt.datetime(2026, 2, 28, 12, 0, tzinfo=dt.UTC),
    "29-february": dt.datetime(2028, 2, 29, 12, 0, tzinfo=dt.UTC),
    "dst-change-eu": dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC),
    "dst-change-us": dt.datetime(2026, 11, 1, 6, 30, tzinfo=dt.UTC),
    "new-years-eve": dt.datetime(2026, 12, 31, 23, 30, tzinfo=dt.UTC),
}


@pytest.fixture(autouse=True)
def clock(request):
    """The test's clock, frozen at :data:`FROZEN_AT` and ticking from there (``clock.move_to``
    and ``clock.shift`` move it). Tests marked ``integration`` or ``browser`` keep the real
    clock: a Celery worker process or Chromium cannot share a frozen one."""
    if request.node.get_closest_marker("integration") or request.node.get_closest_marker("browser"):
        yield None
        return
    with time_machine.travel(FROZEN_AT, tick=True) as traveller:
        yield traveller


@pytest.fixture(params=list(TRICKY_DATES.values()), ids=list(TRICKY_DATES))
def tricky_now(request, clock):
    """Moves the clock to each of :data:`TRICKY_DATES` in turn (a parametrised test)."""
    clock.move_to(request.param)
    return request.param


@pytest.fixture(autouse=True)
def _eager_celery(request):
    """Unit tests run tasks in-process; integration tests flip this themselves."""
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    # An earlier test that ran worker code in this process may have set Celery's
    # "inside a task" flag; a test body is never inside a task.
    from celery._state import _set_task_join_will_block

    _set_task_join_will_block(False)
    yield


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    """Every fixture person gets a password; PBKDF2's 10^6 rounds cost ~0.3 s each here,
    which made fixture set-up more than half of the suite's time. No test checks the hasher."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _isolated_checkpoints(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_FILE = tmp_path / "audit-checkpoints.jsonl"


@pytest.fixture(autouse=True)
def _cache_prefix(settings):
    """A fresh cache namespace per test. Tests never commit, so cache versions that are bumped
    on commit would not move: without this, an answer cached by one test (same e-mail, same
    slugs) could be served to the next one."""
    import uuid

    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    prefix = f"test-{worker}-{uuid.uuid4().hex[:12]}"
    # Assigning (not mutating) fires setting_changed, which rebuilds the cache handlers.
    settings.CACHES = {
        alias: {**cfg, "KEY_PREFIX": prefix} for alias, cfg in settings.CACHES.items()
    }
    from django.core.cache import cache

    if settings.CACHES["default"]["BACKEND"].endswith("LocMemCache"):
        cache.clear()
    yield
    near = getattr(cache, "_near", None)  # the check API's near cache holds a subscription
    if near is not None:
        near.close()


def make_team(slug: str, parent: Team | None = None) -> Team:
    return TeamFactory(slug=slug, parent=parent)


def make_user(
    email: str,
    *,
    team: Team | None = None,
    manager: User | None = None,
    roles=(),
    lead=False,
    **extra,
) -> User:
    return UserFactory(
        email=email, team=team, manager=manager, roles=roles, membership__lead=lead, **extra
    )


@pytest.fixture
def org(db):
    """A small org: platform > (payments, search); other-org > other."""
    platform = make_team("platform")
    payments = make_team("payments", platform)
    search = make_team("search", platform)
    other = make_team("other", make_team("other-org"))
    return {"platform": platform, "payments": payments, "search": search, "other": other}


@pytest.fixture
def manager(org):
    return make_user("manager@example.com", team=org["payments"], lead=True)


@pytest.fixture
def requester(org, manager):
    return make_user("requester@example.com", team=org["payments"], manager=manager)


@pytest.fixture
def service_owner(org):
    return make_user("owner@example.com", team=org["search"])


@pytest.fixture
def other_team_user(org):
    return make_user("other@example.com", team=org["other"])


@pytest.fixture
def auditor(org):
    return make_user("auditor@example.com", team=org["platform"], roles=[PlatformRole.AUDITOR])


@pytest.fixture
def security(org):
    return make_user("security@example.com", team=org["platform"], roles=[PlatformRole.SECURITY])


@pytest.fixture
def admin(org):
    return make_user("admin@example.com", team=org["platform"], roles=[PlatformRole.PLATFORM_ADMIN])


@pytest.fixture
def finance(org):
    return make_user("finance@example.com", team=org["platform"], roles=[PlatformRole.FINANCE])


@pytest.fixture
def personas(requester, manager, service_owner, other_team_user, auditor, security, admin, finance):
    return {
        "requester": requester,
        "manager": manager,
        "service_owner": service_owner,
        "other_team_user": other_team_user,
        "auditor": auditor,
        "security": security,
        "admin": admin,
        "finance": finance,
    }


# --- A throw-away OpenLDAP server (tests/support/slapd.py), one per test session ---------------


@pytest.fixture(scope="session")
def slapd_server():
    """slapd on free loopback ports (plain/StartTLS and LDAPS), stopped at the end. Fails, never
    skips, when slapd is not installed (.ci/run installs it)."""
    from tests.support import slapd as slapd_support

    server = slapd_support.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def slapd(slapd_server, monkeypatch):
    """The session's slapd with a fresh tree (people, groups, services) and the service
    account's password in ``TOLLGATE_LDAP_TEST_PASSWORD``."""
    slapd_server.reset()
    monkeypatch.setenv("TOLLGATE_LDAP_TEST_PASSWORD", slapd_server.service_password)
    return slapd_server
