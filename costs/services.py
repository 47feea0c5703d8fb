"""Every write to cost data. Each service owns its transaction and writes one audit event."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import uuid
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Team
from audit.services import audit_record
from portal.core.actors import BENCH, CLI, COSTS, DEMO, GITOPS, actor_may, actor_user, refuse_string
from portal.core.errors import NotPermitted, ValidationError
from portal.core.queue import enqueue_on_commit

from . import audit_actions as actions
from .attribution import Attributor, LineAttrs, RuleSpec
from .ingest.pipeline import ImportRefused, load_file
from .models import (
    AttributionRule,
    BillingSource,
    CostDaily,
    ImportRun,
    ReattributionRun,
    RuleShare,
)
from .policies import may_edit_costs
from .rollups import rebuild_rollups

logger = logging.getLogger(__name__)
SYSTEM = COSTS
# The system actors that manage cost data without a person: ingestion (watched folder, beat),
# an operator's command, the demo seed, the benchmarks and the test suite.
EDITOR_SYSTEMS = (COSTS, CLI, DEMO, BENCH, GITOPS)  # GITOPS: the configuration repository
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")


def _check_editor(actor) -> None:
    if not actor_may(actor, may_edit_costs, systems=EDITOR_SYSTEMS):
        raise NotPermitted("only platform admins and finance manage costs")


def enabled_rule_specs() -> list[RuleSpec]:
    return [
        RuleSpec.from_model(r)
        for r in AttributionRule.objects.filter(enabled=True).prefetch_related("shares")
    ]


# --- sources and imports -------------------------------------------------------------------


def source_get_or_create(*, actor, name: str, description: str = "") -> BillingSource:
    _check_editor(actor)
    name = name.strip().lower()
    if not _NAME_RE.match(name):
        raise ValidationError(
            "a source name is lower-case letters, digits and dashes (at most 80)", field="source"
        )
    with transaction.atomic():
        source, created = BillingSource.objects.get_or_create(
            name=name, defaults={"description": description}
        )
        if created:
            audit_record(
                actor=actor, action=actions.SOURCE_CREATED, target=source, after={"name": name}
            )
    return source


def parse_period(value: str | None) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.datetime.strptime(value.strip(), "%Y-%m").date()
    except ValueError:
        raise ValidationError("a period is YYYY-MM", field="period") from None


def import_run_create(
    *,
    actor,
    source_name: str,
    file_name: str,
    file_path: str,
    origin: str = ImportRun.Origin.COMMAND,
    period: str | None = None,
    focus_version: str | None = None,
) -> ImportRun:
    """Record a pending import of a file already on disk (the caller then executes it)."""
    _check_editor(actor)
    requested = parse_period(period)
    source = source_get_or_create(actor=actor, name=source_name)
    with transaction.atomic():
        run = ImportRun.objects.create(
            source=source,
            origin=origin,
            file_name=os.path.basename(file_name)[:300],
            file_path=file_path,
            file_size=os.path.getsize(file_path) if os.path.exists(file_path) else 0,
            requested_period=requested,
            focus_version=focus_version or "",
            created_by=actor_user(actor),
        )
    return run


def import_run_forget_file(*, run_id: int) -> None:
    """The run's file was temporary and is gone (a generated file, e.g. the demo's months):
    clear its path so that nothing looks for it. The run's figures stay."""
    ImportRun.objects.filter(pk=run_id).update(file_path="")


def progress_key(run_id: int) -> str:
    return f"costs:import:{run_id}:progress"


def _publish_progress(run_id: int) -> Callable[[int, int, int], None]:
    def publish(rows: int, done: int, total: int) -> None:
        cache.set(progress_key(run_id), {"rows": rows, "bytes": done, "total": total}, 3600)

    return publish


def import_run_execute(
    *,
    run_id: int,
    actor,
    progress: Callable[[int, int, int], None] | None = None,
    batch_rows: int | None = None,
) -> ImportRun:
    """Load the run's file. All or nothing: a refused file leaves every stored line as it was.

    Runs in one durable transaction; the run row is marked running first (outside it) so the
    progress line can show it, and failed afterwards with the first 100 errors and the count.
    """
    refuse_string(actor)
    run = ImportRun.objects.select_related("source").get(pk=run_id)
    if run.status not in (ImportRun.Status.PENDING, ImportRun.Status.RUNNING):
        return run
    ImportRun.objects.filter(pk=run.pk).update(
        status=ImportRun.Status.RUNNING, started_at=timezone.now()
    )
    run.refresh_from_db()
    publish = _publish_progress(run.pk)

    def both(rows, done, total):
        publish(rows, done, total)
        if progress is not None:
            progress(rows, done, total)

    try:
        with transaction.atomic(durable=True):
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:  # two imports of one source never interleave
                    cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [7300, run.source_id])
            result = load_file(
                path=run.file_path,
                source_id=run.source_id,
                run_id=run.pk,
                rules=enabled_rule_specs(),
                requested_period=run.requested_period,
                focus_version=run.focus_version or None,
                progress=both,
                batch_rows=batch_rows,
                file_name=os.path.basename(run.file_name) or None,
            )
            now = timezone.now()
            ImportRun.objects.filter(pk=run.pk).update(
                status=ImportRun.Status.SUCCEEDED,
                focus_version=result.version,
                file_format=result.file_format,
                periods=[p.isoformat() for p in result.periods],
                rows_read=result.rows_read,
                rows_loaded=result.rows_loaded,
                rows_rejected=0,
                error_count=0,
                errors=[],
                billed_total=result.billed_total,
                timings=result.timings,
                finished_at=now,
            )
            audit_record(
                actor=actor,
                action=actions.IMPORT_SUCCEEDED,
                target=run,
                after={
                    "source": run.source.name,
                    "file": run.file_name,
                    "periods": [p.isoformat() for p in result.periods],
                    "rows": result.rows_loaded,
                    "billed_total": str(result.billed_total),
                },
            )
    except ImportRefused as refused:
        rejected_rows = len({e.row for e in refused.errors if e.row > 0})
        ImportRun.objects.filter(pk=run.pk).update(
            status=ImportRun.Status.FAILED,
            focus_version=refused.version or run.focus_version,
            rows_read=refused.rows_read,
            rows_loaded=0,
            rows_rejected=rejected_rows
            if refused.error_count <= len(refused.errors)
            else max(rejected_rows, min(refused.error_count, refused.rows_read)),
            error_count=refused.error_count,
            errors=[e.as_dict() for e in refused.errors],
            finished_at=timezone.now(),
        )
    except Exception as exc:
        logger.exception("import %s crashed", run.pk)
        ImportRun.objects.filter(pk=run.pk).update(
            status=ImportRun.Status.FAILED,
            error_count=1,
            errors=[{"row": 0, "column": "(file)", "reason": f"internal error: {exc}"[:300]}],
            finished_at=timezone.now(),
        )
    run.refresh_from_db()
    cache.set(
        progress_key(run.pk),
        {"rows": run.rows_read, "bytes": run.file_size, "total": run.file_size},
        3600,
    )
    return run


def upload_dir() -> str:
    path = os.path.join(settings.MEDIA_ROOT, "focus-uploads")
    os.makedirs(path, exist_ok=True)
    return path


def import_upload_start(*, actor, source_name: str, upload, period: str | None = None) -> ImportRun:
    """Store an uploaded file and queue its import (the Celery task runs it)."""
    _check_editor(actor)
    parse_period(period)
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", os.path.basename(upload.name))[:120] or "upload"
    path = os.path.join(upload_dir(), f"{uuid.uuid4().hex}_{safe}")
    with open(path, "wb") as fh:
        for chunk in upload.chunks():
            fh.write(chunk)
    run = import_run_create(
        actor=actor,
        source_name=source_name,
        file_name=upload.name,
        file_path=path,
        origin=ImportRun.Origin.UPLOAD,
        period=period,
    )
    from .tasks import import_run_task  # costs.tasks imports this module

    enqueue_on_commit(import_run_task, run.pk)
    return run


# --- rules -----------------------------------------------------------------------------------

RULE_FIELDS = (
    "name",
    "position",
    "enabled",
    "tag_key",
    "tag_value",
    "billing_account_id",
    "sub_account_id",
    "resource_pattern",
    "resource_pattern_kind",
    "service_name",
    "region",
    "method",
    "target_service",
    "target_project",
    "proportional_category",
)


def _rule_snapshot(rule: AttributionRule) -> dict:
    data = {f: getattr(rule, f) for f in RULE_FIELDS}
    data["team"] = rule.team.slug if rule.team_id else None
    data["shares"] = [
        [s.team.slug, str(s.weight)] for s in rule.shares.select_related("team").order_by("id")
    ]
    return data


def _clean_rule(data: dict, shares: list[tuple[str, str]]) -> tuple[dict, list]:
    method = data.get("method") or "direct"
    if method not in AttributionRule.Method.values:
        raise ValidationError(f"unknown method {method!r}", field="method")
    if data.get("resource_pattern_kind", "glob") == "regex" and data.get("resource_pattern"):
        try:
            re.compile(data["resource_pattern"])
        except re.error as exc:
            raise ValidationError(
                f"bad regular expression: {exc}", field="resource_pattern"
            ) from None
    if not (data.get("name") or "").strip():
        raise ValidationError("a rule needs a name", field="name")
    team = None
    team_slug = data.pop("team", None)
    if team_slug:
        team = Team.objects.filter(slug=team_slug).first()
        if team is None:
            raise ValidationError(f"no team {team_slug!r}", field="team")
    if method == "direct" and team is None:
        raise ValidationError("a rule to one team names the team", field="team")
    if method != "direct":
        team = None
    resolved = []
    for slug, weight in shares:
        t = Team.objects.filter(slug=slug).first()
        if t is None:
            raise ValidationError(f"no team {slug!r}", field="shares")
        try:
            w = Decimal(str(weight or "1"))
        except InvalidOperation:
            raise ValidationError(f"bad weight {weight!r}", field="shares") from None
        if not w.is_finite() or w <= 0:
            raise ValidationError("weights are positive numbers", field="shares")
        resolved.append((t, w))
    if len({t.pk for t, _ in resolved}) != len(resolved):
        raise ValidationError("a team appears twice in the shares", field="shares")
    if method in ("even", "fixed") and not resolved:
        raise ValidationError("a shared rule lists the teams that share", field="shares")
    if method == "proportional" and not (data.get("proportional_category") or "").strip():
        raise ValidationError(
            "name the category whose spend sets the shares", field="proportional_category"
        )
    data = {k: v for k, v in data.items() if k in RULE_FIELDS}
    data["team"] = team
    return data, resolved


def rule_save(
    *, actor, rule: AttributionRule | None, data: dict, shares: list[tuple[str, str]] = ()
) -> AttributionRule:
    """Create (``rule=None``) or update a rule. Lines move only on re-attribution."""
    _check_editor(actor)
    data, resolved = _clean_rule(dict(data), list(shares))
    with transaction.atomic():
        if rule is None:
            if data.get("position") in (None, ""):
                last = AttributionRule.objects.order_by("-position").first()
                data["position"] = (last.position + 10) if last else 10
            if AttributionRule.objects.filter(name=data["name"]).exists():
                raise ValidationError("a rule with this name exists", field="name")
            rule = AttributionRule.objects.create(**data)
            before = None
            action = actions.RULE_CREATED
        else:
            rule = AttributionRule.objects.select_for_update().get(pk=rule.pk)
            before = _rule_snapshot(rule)
            if AttributionRule.objects.filter(name=data["name"]).exclude(pk=rule.pk).exists():
                raise ValidationError("a rule with this name exists", field="name")
            for key, value in data.items():
                setattr(rule, key, value)
            rule.updated_at = timezone.now()
            rule.save()
            rule.shares.all().delete()
            action = actions.RULE_UPDATED
        RuleShare.objects.bulk_create([RuleShare(rule=rule, team=t, weight=w) for t, w in resolved])
        after = _rule_snapshot(rule)
        if before == after:
            return rule
        audit_record(actor=actor, action=action, target=rule, before=before, after=after)
    return rule


# --- re-attribution --------------------------------------------------------------------------


def reattribution_request(*, actor, periods: list[str] | None = None) -> ReattributionRun:
    _check_editor(actor)
    parsed = [parse_period(p) for p in (periods or []) if p]
    with transaction.atomic():
        run = ReattributionRun.objects.create(
            periods=[p.isoformat() for p in parsed], requested_by=actor_user(actor)
        )
        audit_record(
            actor=actor,
            action=actions.REATTRIBUTION_REQUESTED,
            target=run,
            after={"periods": run.periods or "all"},
        )
    from .tasks import reattribute_task  # costs.tasks imports this module

    enqueue_on_commit(reattribute_task, run.pk)
    return run


def _periods_for(months: list[dt.date]) -> list[dt.date]:
    """Billing periods (exact ``billing_period_start`` values) within the given months."""
    qs = CostDaily.objects.values_list("billing_period_start", flat=True).distinct()
    all_periods = sorted(set(qs))
    if not months:
        return all_periods
    wanted = {m.replace(day=1) for m in months}
    return [p for p in all_periods if p.replace(day=1) in wanted]


def reattribute_lines(*, periods: list[dt.date], rules: list[RuleSpec]) -> int:
    """Apply ``rules`` to the lines of ``periods`` set-wise; returns the lines changed."""
    from .models import CostLine

    if not periods:
        return 0
    attributor = Attributor(rules)
    keys = (
        CostLine.objects.filter(billing_period_start__in=periods)
        .order_by()
        .values_list(
            "attr_key",
            "billing_account_id",
            "sub_account_id",
            "resource_id",
            "service_name",
            "region_id",
            "tags",
        )
        .distinct()
    )
    mapping = []
    seen = set()
    for key, ba, sa, rid, svc, region, tags in keys.iterator(chunk_size=5000):
        if key in seen:
            continue
        seen.add(key)
        o = attributor.attribute(LineAttrs(ba, sa, rid, svc, region, tags or {}))
        mapping.append((key, o.allocation, o.team_id, o.service, o.project, o.rule_id))
    marks = ", ".join(["%s"] * len(periods))
    pg = connection.vendor == "postgresql"
    differs = "IS DISTINCT FROM" if pg else "IS NOT"
    changed_cond = " OR ".join(
        f"costs_costline.{c} {differs} m.{m}"
        for c, m in (
            ("allocation", "allocation"),
            ("team_id", "team_id"),
            ("attributed_service", "service"),
            ("project", "project"),
            ("rule_id", "rule_id"),
        )
    )
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS costs_reattr_map")
        cursor.execute(
            "CREATE TEMP TABLE costs_reattr_map (attr_key bigint PRIMARY KEY, allocation varchar(16), "
            "team_id bigint, service varchar(120), project varchar(120), rule_id bigint)"
        )
        if pg:
            with cursor.cursor.copy(
                "COPY costs_reattr_map (attr_key, allocation, team_id, service, project, rule_id) FROM STDIN"
            ) as copy:
                for row in mapping:
                    copy.write_row(row)
            cursor.execute("ANALYZE costs_reattr_map")
        else:
            cursor.executemany(
                "INSERT INTO costs_reattr_map VALUES (%s, %s, %s, %s, %s, %s)", mapping
            )
        cursor.execute(
            "UPDATE costs_costline SET allocation = m.allocation, team_id = m.team_id, "  # noqa: S608
            "attributed_service = m.service, project = m.project, rule_id = m.rule_id "
            "FROM costs_reattr_map m WHERE costs_costline.attr_key = m.attr_key "
            f"AND costs_costline.billing_period_start IN ({marks}) AND ({changed_cond})",
            list(periods),
        )
        changed = cursor.rowcount
        cursor.execute("DROP TABLE costs_reattr_map")
    rebuild_rollups(periods=periods, rules=rules)
    from .analytics.tasks import enqueue_resource_rollups

    enqueue_resource_rollups(periods)
    return changed


def reattribution_execute(*, run_id: int) -> ReattributionRun:
    run = ReattributionRun.objects.get(pk=run_id)
    if run.status not in (ReattributionRun.Status.PENDING, ReattributionRun.Status.RUNNING):
        return run
    ReattributionRun.objects.filter(pk=run.pk).update(
        status=ReattributionRun.Status.RUNNING, started_at=timezone.now()
    )
    months = [dt.date.fromisoformat(p) for p in run.periods]
    try:
        with transaction.atomic(durable=True):
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [7301, 0])
            periods = _periods_for(months)
            changed = reattribute_lines(periods=periods, rules=enabled_rule_specs())
            ReattributionRun.objects.filter(pk=run.pk).update(
                status=ReattributionRun.Status.SUCCEEDED,
                lines_changed=changed,
                finished_at=timezone.now(),
            )
            audit_record(
                actor=run.requested_by or SYSTEM,
                action=actions.REATTRIBUTION_APPLIED,
                target=run,
                after={"periods": [p.isoformat() for p in periods], "lines_changed": changed},
            )
    except Exception as exc:
        logger.exception("re-attribution %s failed", run.pk)
        ReattributionRun.objects.filter(pk=run.pk).update(
            status=ReattributionRun.Status.FAILED, error=str(exc)[:2000], finished_at=timezone.now()
        )
    run.refresh_from_db()
    return run
