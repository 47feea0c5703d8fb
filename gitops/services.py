"""Configuration as code: export the database as a tree, plan a tree, apply a plan.

``config_apply`` runs in one transaction: under an advisory lock it plans again, refuses when
the hash differs from the reviewed one (the database or the files changed since), then makes
every change through the owning app's services as the repository's actor (audited as
``gitops:<name>``), marks what the repository now manages and writes one summary event.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from portal.core.actors import GITOPS, Actor, actor_may, is_gitops_actor
from portal.core.errors import Conflict, NotPermitted
from portal.core.locks import advisory_lock

from . import registry as actions
from .kinds import BY_NAME, KINDS
from .models import ManagedObject
from .plan import Plan, compute_plan
from .tree import LAYOUT, SCHEMA_DIR

HEADER = (
    "# Tollgate configuration (docs/GITOPS.md): `manage.py config_plan DIR`, then config_apply.\n"
)


def config_plan(*, root: str | Path) -> Plan:
    """The plan of a tree (read-only); ``ConfigInvalid`` names every problem."""
    return compute_plan(root)


def _schema_comment(path: str) -> str:
    top = path.split("/", 1)[0]
    kind = LAYOUT.get(top)
    if kind is None or kind == "standards":
        return ""
    depth = path.count("/")
    return f"# yaml-language-server: $schema={'../' * depth}.schemas/{kind}.schema.json\n"


def _yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def config_export(*, root: str | Path, kinds: list[str] | None = None) -> list[str]:
    """Write the database's configuration as a tree under ``root`` (files are overwritten,
    nothing else is touched); the JSON Schemas go to ``root/.schemas/``. Returns the files."""
    base = Path(root)
    base.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {}
    for kind in KINDS:
        if kinds and kind.name not in kinds:
            continue
        for path, data in kind.export(kind.current()).items():
            if isinstance(data, dict) and isinstance(files.get(path), dict):
                files[path].update(data)  # a service file: the service, then its entitlements
            else:
                files[path] = data
    if not kinds or "service" in kinds:
        (base / "services").mkdir(exist_ok=True)
    written = []
    for path, data in sorted(files.items()):
        target = base / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if path == "standards.yaml":
            from standards.document import HEADER as STANDARDS_HEADER
            from standards.document import KINDS as CHECK_KINDS

            text = STANDARDS_HEADER.format(kinds=", ".join(CHECK_KINDS)) + (
                _yaml(data) if data else "[]\n"
            )
        else:
            text = _schema_comment(path) + HEADER + _yaml(data)
        target.write_text(text, encoding="utf-8")
        written.append(path)
    schemas = base / ".schemas"
    schemas.mkdir(exist_ok=True)
    for schema in sorted(SCHEMA_DIR.glob("*.schema.json")):
        (schemas / schema.name).write_text(schema.read_text(encoding="utf-8"), encoding="utf-8")
    return written


def config_apply(*, actor: Actor, root: str | Path, plan_hash: str) -> Plan:
    """Apply the tree whose reviewed plan had ``plan_hash``; refused (Conflict) when the plan
    made now has another hash. Returns the plan that was applied."""
    if not is_gitops_actor(actor) or not actor_may(actor, lambda u: False, systems=(GITOPS,)):
        raise NotPermitted("configuration is applied by a repository's gitops actor")
    with transaction.atomic(durable=True), advisory_lock("gitops-apply") as acquired:
        if not acquired:
            raise Conflict("another configuration apply is running; plan again after it")
        plan = compute_plan(root)
        if plan.hash != plan_hash:
            raise Conflict(
                f"the database or the files changed since the plan (plan hash {plan_hash}, "
                f"now {plan.hash}): run config_plan again and review it"
            )
        _apply_changes(plan, actor)
        _mark(plan, actor)
        if plan.changes:
            audit_record(
                actor=actor,
                action=actions.CONFIG_APPLIED,
                target_type="gitops.plan",
                target_id=plan.hash[7:23],
                after={"hash": plan.hash, **plan.counts(), "unchanged": plan.unchanged},
            )
    return plan


def _apply_changes(plan: Plan, actor: Actor) -> None:
    order = [k.name for k in KINDS]
    ups = sorted((c for c in plan.changes if c.op != "delete"), key=lambda c: order.index(c.kind))
    for change in ups:
        kind = BY_NAME[change.kind]
        if hasattr(kind, "apply_all"):
            continue
        after = change.after or {}
        if change.op == "create":
            kind.create(change.key, after, actor)
        else:
            kind.update(change.key, change.before or {}, after, actor)
    for kind in KINDS:
        if kind.name in plan.desired:
            kind.finish(plan.changes, actor)
    for kind in KINDS:
        if hasattr(kind, "apply_all") and any(c.kind == kind.name for c in plan.changes):
            kind.apply_all(plan.desired[kind.name], actor)
    deletes = sorted(
        (c for c in plan.changes if c.op == "delete" and not hasattr(BY_NAME[c.kind], "apply_all")),
        key=lambda c: -order.index(c.kind),
    )
    for change in deletes:
        BY_NAME[change.kind].delete(change.key, change.before or {}, actor)


def _mark(plan: Plan, actor: Actor) -> None:
    """The managed marks follow the applied tree: one per object of a managed kind."""
    name = actor.name.removeprefix(GITOPS.name + ".")  # type: ignore[union-attr]
    now = timezone.now()
    for kind in plan.kinds:
        want = plan.desired[kind.name]
        ManagedObject.objects.filter(kind=kind.name).exclude(key__in=list(want)).delete()
        for key in want:
            obj = kind.instance(key)
            if obj is None:
                continue
            source = plan.sources[kind.name].get(key, ("", None))[0]
            ManagedObject.objects.update_or_create(
                kind=kind.name,
                key=key,
                defaults={
                    "content_type": ContentType.objects.get_for_model(type(obj)),
                    "object_id": obj.pk,
                    "source": source,
                    "repository": name,
                    "applied_at": now,
                },
            )


def plan_as_json(plan: Plan) -> str:
    return json.dumps(
        {
            "hash": plan.hash,
            "counts": plan.counts(),
            "unchanged": plan.unchanged,
            "changes": [
                {
                    "kind": c.kind,
                    "key": c.key,
                    "op": c.op,
                    "fields": c.fields,
                    "note": c.note,
                    "before": c.before,
                    "after": c.after,
                    "source": f"{c.source[0]}:{c.source[1] or 1}" if c.source else None,
                }
                for c in plan.changes
            ],
        },
        indent=2,
        default=str,
    )
