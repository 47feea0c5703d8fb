"""Requestable bundles and their assignment rules (``bundles.yaml``).

A change of a bundle's members or rules is previewed in the plan — who would gain and lose
access — with the same computation the apply then acts on
(``access.services.bundles.assignment_diff``)."""

from __future__ import annotations

from typing import Any

from access import services as access
from access.models import AccessBundle, ApprovalPolicy, Entitlement
from access.services.bundles import RuleSpec, assignment_diff
from accounts.models import Team, User

from ..tree import Tree
from .base import Desired, Kind, State, items

RULE_FIELDS = ("teams", "departments", "worker_types", "manager_subtree", "enabled")


def _ents(refs: list[str]) -> list[Entitlement]:
    out = []
    for ref in refs:
        service, slug = ref.split("/", 1)
        found = Entitlement.objects.filter(service__slug=service, slug=slug).first()
        if found is not None:
            out.append(found)
    return out


def _specs(want: dict) -> list[RuleSpec]:
    return [
        RuleSpec(slug=r["slug"], **{k: r[k] for k in RULE_FIELDS}) for r in want["assignment_rules"]
    ]


class BundleKind(Kind):
    name, path, label = "bundle", "bundles.yaml", "bundles"

    def current(self) -> State:
        out: State = {}
        qs = AccessBundle.objects.filter(requestable=True) | AccessBundle.objects.filter(
            rules__isnull=False
        )
        for b in (
            qs.distinct()
            .select_related("owner_team", "policy")
            .prefetch_related("entitlements__service", "rules__manager_subtree")
            .order_by("slug")
        ):
            out[b.slug] = {
                "name": b.name,
                "description": b.description,
                "owner_team": b.owner_team.slug if b.owner_team is not None else None,
                "policy": b.policy.slug if b.policy is not None else None,
                "requestable": b.requestable,
                "entitlements": sorted(str(e) for e in b.entitlements.all()),
                "assignment_rules": [
                    {"slug": r.slug, **RuleSpec.of(r).__dict__} | {"slug": r.slug}
                    for r in sorted(b.rules.all(), key=lambda r: r.slug)
                ],
            }
            for rule in out[b.slug]["assignment_rules"]:
                for k in ("teams", "departments", "worker_types"):
                    rule[k] = sorted(rule[k])
        return out

    def desired(self, tree: Tree, context: dict) -> Desired:
        doc = tree.file(self.path)
        state: State = {}
        source: dict = {}
        known = context.get("entitlements")
        if known is None:
            known = {
                f"{s}/{e}"
                for s, e in Entitlement.objects.filter(retired_at__isnull=True).values_list(
                    "service__slug", "slug"
                )
            }
        policies = context.get("policies") or set(
            ApprovalPolicy.objects.values_list("slug", flat=True)
        )
        teams = set(Team.objects.values_list("slug", flat=True))
        emails = {e.lower() for e in User.objects.values_list("email", flat=True)}
        for i, item in items(doc, "bundles"):
            slug = item["slug"]
            if slug in state:
                tree.problem(doc, ("bundles", i, "slug"), f"bundle {slug!r} is listed twice")
            for j, ref in enumerate(item["entitlements"]):
                if ref not in known:
                    tree.problem(doc, ("bundles", i, "entitlements", j), f"no entitlement {ref!r}")
            if item.get("policy") and item["policy"] not in policies:
                tree.problem(doc, ("bundles", i, "policy"), f"no policy {item['policy']!r}")
            if item.get("owner_team") and item["owner_team"] not in teams:
                tree.problem(doc, ("bundles", i, "owner_team"), f"no team {item['owner_team']!r}")
            rules = []
            for j, rule in enumerate(item.get("assignment_rules") or []):
                where = ("bundles", i, "assignment_rules", j)
                for t in (rule.get("teams") or []) + (rule.get("departments") or []):
                    if t not in teams:
                        tree.problem(doc, where, f"no team {t!r}")
                manager = rule.get("manager_subtree")
                if manager and manager.lower() not in emails:
                    tree.problem(doc, (*where, "manager_subtree"), f"no person {manager!r}")
                value = {
                    "slug": rule["slug"],
                    "teams": sorted(rule.get("teams") or []),
                    "departments": sorted(rule.get("departments") or []),
                    "worker_types": sorted(rule.get("worker_types") or []),
                    "manager_subtree": manager,
                    "enabled": rule.get("enabled", True),
                }
                if not (value["teams"] or value["departments"] or value["worker_types"] or manager):
                    tree.problem(doc, where, "an assignment rule names at least one condition")
                rules.append(value)
            state[slug] = {
                "name": item["name"],
                "description": item.get("description", ""),
                "owner_team": item.get("owner_team"),
                "policy": item.get("policy"),
                "requestable": item.get("requestable", True),
                "entitlements": sorted(item["entitlements"]),
                "assignment_rules": sorted(rules, key=lambda r: r["slug"]),
            }
            source[slug] = (doc.path, doc.line("bundles", i))
        return Desired(dict(sorted(state.items())), source)

    def export(self, state: State) -> dict:
        return {self.path: {"bundles": [{"slug": k, **v} for k, v in state.items()]}}

    def preview(self, key: str, want: dict[str, Any] | None) -> str:
        """Who would gain and lose access by the assignment rules (plan note)."""
        bundle = AccessBundle.objects.filter(slug=key).first()
        if want is None:
            members, specs = [], []
        else:
            members, specs = _ents(want["entitlements"]), _specs(want)
        if bundle is None and not specs:
            return ""
        diff = assignment_diff(bundle=bundle, members=members, specs=specs).summary()
        if not diff["gain"] and not diff["lose"]:
            return "assignment rules: nobody gains or loses access"

        def show(rows: list[str]) -> str:
            return "; ".join(rows[:20]) + (f" … ({len(rows)})" if len(rows) > 20 else "")

        parts = []
        if diff["gain"]:
            parts.append(f"gain {len(diff['gain'])}: {show(diff['gain'])}")
        if diff["lose"]:
            parts.append(f"lose {len(diff['lose'])}: {show(diff['lose'])}")
        return "assignment rules: " + " | ".join(parts)

    def delete_note(self, key, have) -> str:
        return self.preview(key, None)

    def _save(self, key, want, actor) -> AccessBundle:
        bundle = access.bundle_save(
            actor=actor,
            slug=key,
            entitlements=_ents(want["entitlements"]),
            name=want["name"],
            description=want["description"],
            owner_team=Team.objects.get(slug=want["owner_team"]) if want["owner_team"] else None,
            policy=ApprovalPolicy.objects.get(slug=want["policy"]) if want["policy"] else None,
            requestable=want["requestable"],
        )
        keep = {r["slug"] for r in want["assignment_rules"]}
        for rule in bundle.rules.exclude(slug__in=keep):
            access.assignment_rule_delete(actor=actor, rule=rule)
        for spec in _specs(want):
            access.assignment_rule_save(actor=actor, bundle=bundle, spec=spec)
        access.bundle_assignments_apply(bundle=bundle)
        return bundle

    def create(self, key, want, actor) -> None:
        self._save(key, want, actor)

    def update(self, key, have, want, actor) -> None:
        self._save(key, want, actor)

    def delete(self, key, have, actor) -> str:
        return access.bundle_delete(actor=actor, bundle=AccessBundle.objects.get(slug=key))

    def instance(self, key):
        return AccessBundle.objects.filter(slug=key).first()
