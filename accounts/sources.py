"""Directory sources beyond the file: the LDAP source, and the mass-leave hold it shares with
SCIM. Both apply through the one directory service (``accounts.services``): the same
validation, plan, joiners, movers, leavers, audit events, lock and hold.

LDAP runs (:func:`directory_ldap_sync`) are *incremental* (entries whose ``modifyTimestamp``
is at or after the high-water mark of the last applied run; leavers only by the "account
disabled" attribute) or *full* (every person; active people missing from LDAP leave). A run is
full when asked, when no high-water mark is known, or when the last full run is older than
``TOLLGATE_LDAP_DIRECTORY_FULL_EVERY`` (a day). The mark lives in the cache: losing it costs
one full run, never a missed change.

The hold: when applying a run would make more than ``TOLLGATE_SCIM_MAX_LEAVER_SHARE`` of the
active people leave within an hour (at least ``TOLLGATE_SCIM_LEAVER_FLOOR`` are never held),
nothing is applied, a ``directory.held`` audit event lists the leavers, the high-water mark
does not move (the next scheduled run is held again), and an operator who has checked the
list applies it with ``manage.py import_directory --ldap --full --confirm-leavers N``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from connectors.base import ConfigError

from . import directory
from .directory import ldap as ldap_source
from .hold import DIRECTORY_HELD, leavers_over_share
from .services import directory_import, directory_people_apply

logger = logging.getLogger(__name__)

STATE_KEY = "tollgate:directory:ldap:state"


@dataclass
class LdapSyncOutcome:
    read: ldap_source.LdapRead
    result: directory.DirectoryImportResult
    full: bool

    @property
    def held(self) -> bool:
        return self.result.held

    def summary(self) -> str:
        kind = "full" if self.full else "incremental"
        skipped = (
            f", {len(self.read.skipped)} entries without e-mail skipped"
            if self.read.skipped
            else ""
        )
        if self.held:
            left = self.result.counts["left"]
            return (
                f"LDAP {kind} run HELD: {left} people would leave; nothing applied. Check them "
                f"and run import_directory --ldap{' --full' if self.full else ''} "
                f"--confirm-leavers {left}{skipped}"
            )
        return f"LDAP {kind} run: {self.result.summary()}{skipped}"


def ldap_state() -> dict:
    return cache.get(STATE_KEY) or {}


def _due_full(state: dict, now: datetime) -> bool:
    last = state.get("last_full")
    if not state.get("high_water") or not last:
        return True
    try:
        when = datetime.fromisoformat(last)
    except ValueError:
        return True
    return now - when >= timedelta(seconds=settings.TOLLGATE_LDAP_DIRECTORY_FULL_EVERY)


def directory_ldap_sync(
    *,
    actor,
    full: bool | None = None,
    dry_run: bool = False,
    confirm_leavers: int | None = None,
    config=None,
) -> LdapSyncOutcome:
    """Read people from LDAP and apply them through the directory service.

    ``full`` None decides by the schedule (see the module). ``confirm_leavers`` N applies a run
    the hold would keep, if it makes exactly N people leave. Raises ConnectorError (LDAP
    unreachable, refused bind, bad configuration) or DirectoryImportError (invalid rows:
    nothing applied) — in both cases the high-water mark stays where it was.
    """
    cfg = ldap_source.SourceConfig.from_mapping(
        config if config is not None else settings.TOLLGATE_LDAP_DIRECTORY
    )
    password = os.environ.get(cfg.password_env, "")
    if not password:
        raise ConfigError(
            f"LDAP directory source: environment variable {cfg.password_env} is not set"
        )
    state = ldap_state()
    now = timezone.now()
    if full is None:
        full = _due_full(state, now)
    since = None if full else state.get("high_water")
    read = ldap_source.read_people(cfg, password=password, since=since)  # no transaction open
    source = f"ldap {cfg.endpoint.label}" + ("" if full else f" since {since}")

    def hold(plan) -> bool:
        if confirm_leavers is not None and plan.counts()["left"] == confirm_leavers:
            return False
        return leavers_over_share(plan)

    try:
        if full or dry_run:
            result = directory_import(
                rows=read.input, full=full, dry_run=dry_run, actor=actor, source=source, hold=hold
            )
        elif read.input.rows:
            result = directory_people_apply(rows=read.input, actor=actor, source=source, hold=hold)
        else:
            result = None
    except directory.DirectoryImportError as exc:
        exc.where = read.where  # type: ignore[attr-defined]  # row number -> entry DN
        raise
    if result is None:
        result = directory.DirectoryImportResult(
            plan=directory.DirectoryPlan(), rows=0, dry_run=False
        )
    outcome = LdapSyncOutcome(read=read, result=result, full=full)
    if result.held:
        leavers = [c.email for c in result.plan.people_changed if c.leave]
        with transaction.atomic():
            audit_record(
                actor=actor,
                action=DIRECTORY_HELD,
                target_type="accounts.directory",
                target_id="ldap",
                after={
                    "source": source,
                    "full": full,
                    "left": len(leavers),
                    "leavers": leavers[:200],
                },
                reason="more than the allowed share of people would leave within an hour",
            )
        logger.warning("directory.ldap held", extra={"left": len(leavers), "full": full})
    elif not dry_run:
        cache.set(
            STATE_KEY,
            {
                "high_water": max(
                    filter(None, [read.high_water, state.get("high_water")]), default=None
                ),
                "last_full": now.isoformat() if full else state.get("last_full"),
            },
            timeout=None,
        )
    return outcome
