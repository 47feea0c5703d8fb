"""Every write of standards as policy (P6): applying a document version and scanning.

Applying a version stores its YAML text, author and time, brings the Standard rows in line
and writes one audit event. A scan upserts violations (new ones opened, still-violating ones
touched, fixed ones resolved), snapshots the compliance scores and writes one audit event.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone

from access.models import Service
from accounts.models import Team
from audit.services import audit_record
from portal.core.actors import (
    BENCH,
    DEMO,
    GITOPS,
    STANDARDS_IMPORT,
    STANDARDS_SCAN,
    Actor,
    actor_label,
    actor_may,
    actor_user,
)
from portal.core.errors import Conflict, NotPermitted

from . import engine
from . import registry as actions
from .document import SERVICE_OWNER, Rule, parse
from .models import ComplianceSnapshot, PolicyVersion, ScanRun, Standard, Violation
from .policies import may_edit_standards, may_run_scan

BATCH = 2000


# --- the diff preview -------------------------------------------------------------------
@dataclass
class Change:
    key: str
    rule: Rule | None  # the proposed rule (None when removed)
    old: Rule | None  # the applied rule (None when added)
    fields: list[str] = field(default_factory=list)
    new_violations: int = 0
    resolved_violations: int = 0


@dataclass
class Diff:
    added: list[Change]
    changed: list[Change]
    removed: list[Change]
    unchanged: int
    base_version: int | None

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.changed or self.removed)

    @property
    def new_violations(self) -> int:
        return sum(c.new_violations for c in self.added + self.changed)

    @property
    def resolved_violations(self) -> int:
        return sum(c.resolved_violations for c in self.changed + self.removed)

    def summary(self) -> dict:
        return {
            "added": [c.key for c in self.added],
            "changed": {c.key: c.fields for c in self.changed},
            "removed": [c.key for c in self.removed],
            "unchanged": self.unchanged,
            "new_violations": self.new_violations,
            "resolved_violations": self.resolved_violations,
        }


def _open_keys(key: str) -> set[str]:
    return set(
        Violation.objects.filter(standard__key=key, resolved_at__isnull=True).values_list(
            "subject_key", flat=True
        )
    )


def standards_diff(*, rules: list[Rule], count_violations: bool = True) -> Diff:
    """What applying ``rules`` would change, and the violations it would open or close
    (evaluated over current data, nothing written)."""
    current = {s.key: Rule.from_model(s) for s in Standard.objects.filter(active=True)}
    proposed = {r.key: r for r in rules}
    added, changed, removed = [], [], []
    unchanged = 0
    for key, rule in proposed.items():
        old = current.get(key)
        if old is None:
            added.append(Change(key, rule, None))
            continue
        before, after = old.comparable(), rule.comparable()
        fields = [name for name in after if before[name] != after[name]]
        if fields:
            changed.append(Change(key, rule, old, fields))
        else:
            unchanged += 1
    for key, old in current.items():
        if key not in proposed:
            removed.append(Change(key, None, old))
    if count_violations:
        for change in added + changed:
            found = {f.subject_key for f in engine.findings(change.rule)}
            already = _open_keys(change.key) if change.old is not None else set()
            change.new_violations = len(found - already)
            change.resolved_violations = len(already - found)
        for change in removed:
            change.resolved_violations = len(_open_keys(change.key))
    version = PolicyVersion.objects.order_by("-number").values_list("number", flat=True).first()
    return Diff(added, changed, removed, unchanged, version)


def standards_preview(*, actor, text: str) -> Diff:
    """Parse and diff a proposed document (read-only). Bad YAML raises PolicyDocumentError."""
    if not may_edit_standards(actor):
        raise NotPermitted("only a platform admin changes the standards")
    return standards_diff(rules=parse(text))


# --- applying a version -------------------------------------------------------------------
def standards_apply(
    *, actor, text: str, base_version: int | None = None, check_base: bool = True
) -> tuple[PolicyVersion | None, Diff]:
    """Apply a document. Returns (the new version, the diff); (None, diff) when it changes
    nothing. ``base_version`` is the version the preview was made against: if another
    version was applied since, the apply is refused (Conflict) so nobody overwrites a
    change they did not see."""
    if not actor_may(actor, may_edit_standards, systems=(STANDARDS_IMPORT, DEMO, BENCH, GITOPS)):
        raise NotPermitted("only a platform admin changes the standards")
    rules = parse(text)
    try:
        with transaction.atomic():
            latest = PolicyVersion.objects.select_for_update().order_by("-number").first()
            latest_number = latest.number if latest else None
            if check_base and latest_number != base_version:
                raise Conflict(
                    f"the standards changed since your preview (now version {latest_number}, "
                    f"you previewed against {base_version}); preview again"
                )
            diff = standards_diff(rules=rules, count_violations=False)
            if diff.is_empty:
                return None, diff
            version = PolicyVersion.objects.create(
                number=(latest_number or 0) + 1,
                yaml_text=text,
                sha256=hashlib.sha256(text.encode()).hexdigest(),
                author=actor_user(actor),
                author_label=actor_label(actor),
                summary=diff.summary(),
            )
            _sync_standards(rules, version)
            audit_record(
                actor=actor,
                action=actions.VERSION_APPLIED,
                target=version,
                before={"version": latest_number},
                after={"version": version.number, "sha256": version.sha256, **diff.summary()},
            )
    except IntegrityError as exc:  # two applies raced for the same number
        raise Conflict("another version was applied at the same time; preview again") from exc
    return version, diff


def _sync_standards(rules: list[Rule], version: PolicyVersion) -> None:
    existing = {s.key: s for s in Standard.objects.select_for_update()}
    keep = set()
    for position, rule in enumerate(rules):
        keep.add(rule.key)
        values = {
            "title": rule.title,
            "description": rule.description,
            "severity": rule.severity,
            "owner": rule.owner,
            "kind": rule.kind,
            "scope": rule.scope,
            "params": rule.params,
        }
        standard = existing.get(rule.key)
        if standard is None:
            Standard.objects.create(key=rule.key, position=position, version=version, **values)
            continue
        changed = not standard.active or Rule.from_model(standard) != rule
        standard.position = position
        if changed:
            for name, value in values.items():
                setattr(standard, name, value)
            standard.active = True
            standard.version = version
        standard.save()
    Standard.objects.filter(active=True).exclude(key__in=keep).update(active=False)


# --- the scan ---------------------------------------------------------------------------
def _owner_team_id(rule: Rule, service_id: int | None, teams: dict, services: dict):
    if rule.owner == SERVICE_OWNER:
        return services.get(service_id)
    return teams.get(rule.owner)


def _upsert(standard: Standard, found: dict, *, now, teams, services) -> tuple[int, int]:
    """Open what is new, touch what still violates, resolve what no longer does."""
    rule = Rule.from_model(standard)
    open_rows = dict(
        Violation.objects.filter(standard=standard, resolved_at__isnull=True).values_list(
            "subject_key", "pk"
        )
    )
    resolved = [pk for key, pk in open_rows.items() if key not in found]
    for start in range(0, len(resolved), BATCH):
        Violation.objects.filter(pk__in=resolved[start : start + BATCH]).update(resolved_at=now)
    Violation.objects.filter(standard=standard, resolved_at__isnull=True).update(last_seen=now)
    new = [
        Violation(
            standard=standard,
            subject_type=f.subject_type,
            subject_id=f.subject_id,
            subject_key=f.subject_key,
            subject_label=f.label[:300],
            detail=f.detail[:500],
            owner_team_id=_owner_team_id(rule, f.service_id, teams, services),
            service_id=f.service_id,
            fix_url=f.fix_url,
            first_seen=now,
            last_seen=now,
        )
        for key, f in found.items()
        if key not in open_rows
    ]
    Violation.objects.bulk_create(new, batch_size=BATCH)
    return len(new), len(resolved)


def _snapshots(scan: ScanRun, rules: list[Rule], services: dict, now) -> int:
    population = engine.population_by_service(rules)
    violating: dict[int, int] = {}
    # Distinct (type, id) per service, counted in the database.
    for service_id, n in (
        Violation.objects.filter(resolved_at__isnull=True, standard__active=True)
        .exclude(service_id=None)
        .values("service_id", "subject_type")
        .annotate(n=Count("subject_id", distinct=True))
        .values_list("service_id", "n")
        .order_by()
    ):
        violating[service_id] = violating.get(service_id, 0) + n
    snaps = []
    per_team: dict[int, list[int]] = {}
    total = [0, 0]
    for service_id, subjects in population.items():
        if not subjects:
            continue
        compliant = max(0, subjects - violating.get(service_id, 0))
        snaps.append(
            ComplianceSnapshot(
                scan=scan,
                kind=ComplianceSnapshot.Kind.SERVICE,
                service_id=service_id,
                subjects=subjects,
                compliant=compliant,
                taken_at=now,
            )
        )
        team = per_team.setdefault(services[service_id], [0, 0])
        team[0] += subjects
        team[1] += compliant
        total[0] += subjects
        total[1] += compliant
    for team_id, (subjects, compliant) in per_team.items():
        snaps.append(
            ComplianceSnapshot(
                scan=scan,
                kind=ComplianceSnapshot.Kind.TEAM,
                team_id=team_id,
                subjects=subjects,
                compliant=compliant,
                taken_at=now,
            )
        )
    snaps.append(
        ComplianceSnapshot(
            scan=scan,
            kind=ComplianceSnapshot.Kind.ORG,
            subjects=total[0],
            compliant=total[1],
            taken_at=now,
        )
    )
    ComplianceSnapshot.objects.bulk_create(snaps, batch_size=BATCH)
    return total[0]


def standards_scan(*, actor: Actor = STANDARDS_SCAN, now=None) -> ScanRun:
    """Evaluate every active standard over current data (callers hold the advisory lock)."""
    if not actor_may(actor, may_run_scan, systems=(STANDARDS_SCAN,)):
        raise NotPermitted("only security or a platform admin starts a standards scan")
    now = now or timezone.now()
    with transaction.atomic():
        version = PolicyVersion.objects.order_by("-number").first()
        scan = ScanRun.objects.create(
            actor_label=actor_label(actor),
            version=version,
            started_at=now,
        )
        teams = dict(Team.objects.values_list("slug", "pk"))
        services = dict(Service.objects.values_list("pk", "owner_team_id"))
        standards = list(Standard.objects.filter(active=True))
        opened = resolved = violating = 0
        for standard in standards:
            found = {f.subject_key: f for f in engine.findings(Rule.from_model(standard))}
            o, r = _upsert(standard, found, now=now, teams=teams, services=services)
            opened, resolved, violating = opened + o, resolved + r, violating + len(found)
        # Standards removed from the document: their open violations are resolved.
        resolved += Violation.objects.filter(
            standard__active=False, resolved_at__isnull=True
        ).update(resolved_at=now)
        subjects = _snapshots(scan, [Rule.from_model(s) for s in standards], services, now)
        scan.status = ScanRun.Status.DONE
        scan.standards = len(standards)
        scan.subjects = subjects
        scan.violating = violating
        scan.opened = opened
        scan.resolved = resolved
        scan.finished_at = timezone.now()
        scan.save()
        audit_record(
            actor=actor,
            action=actions.SCAN_COMPLETED,
            target=scan,
            after={
                "version": version.number if version else None,
                "standards": len(standards),
                "violating": violating,
                "opened": opened,
                "resolved": resolved,
            },
        )
    return scan
