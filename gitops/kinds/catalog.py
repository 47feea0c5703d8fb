"""Catalog kinds: approval policies, services, entitlements, separation-of-duties pairs.

Written through ``access.services`` (catalog and catalog_config): an entitlement that history
refers to is retired, never deleted, and the plan says what becomes of its held grants.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from django.db.models import Q

from access import services as access
from access.models import ApprovalPolicy, Entitlement, Grant, Service, ToxicPair
from access.services.catalog_config import HELD, is_deletable
from accounts.models import Team, User
from connectors.base import ConfigError
from connectors.registry import check_config_secrets, validate_config

from ..tree import Tree
from .base import (
    Desired,
    Kind,
    State,
    duration_text,
    duration_value,
    items,
    money,
    normal_duration,
    parse_money,
    ratio,
)

REASON = "removed from the configuration repository"


def _emails_exist(tree, doc, where, emails, context) -> None:
    known = context.setdefault(
        "emails", {e.lower() for e in User.objects.values_list("email", flat=True)}
    )
    for i, email in enumerate(emails):
        if email.lower() not in known:
            tree.problem(doc, (*where, i), f"no person with the e-mail {email!r}")


def _users(emails: list[str]) -> list[User]:
    return list(User.objects.filter(email__in=emails))


# --- policies -----------------------------------------------------------------------------
class PolicyKind(Kind):
    name, path, label = "policy", "policies.yaml", "policies"

    def current(self) -> State:
        out: State = {}
        qs = ApprovalPolicy.objects.prefetch_related(
            "auto_approve_users", "stages__users", "stages__group"
        ).order_by("slug")
        for p in qs:
            out[p.slug] = {
                "name": p.name,
                "description": p.description,
                "auto_approve_max_risk": p.auto_approve_max_risk,
                "auto_approve_peer_ratio": ratio(p.auto_approve_peer_ratio),
                "auto_approve_users": sorted(u.email for u in p.auto_approve_users.all()),
                "sod_action": p.sod_action,
                "auto_approve_on_call": p.auto_approve_on_call,
                "remind_after": duration_text(p.remind_after),
                "escalate_after": duration_text(p.escalate_after),
                "expire_after": duration_text(p.expire_after),
                "stages": [
                    {
                        "name": s.name,
                        "approver": s.approver_kind,
                        "required": s.required,
                        "group": s.group.name if s.group is not None else None,
                        "users": sorted(u.email for u in s.users.all()),
                        "auto_approve_on_call": s.auto_approve_on_call,
                    }
                    for s in sorted(p.stages.all(), key=lambda s: s.order)
                ],
            }
        return out

    def desired(self, tree: Tree, context: dict) -> Desired:
        doc = tree.file(self.path)
        state: State = {}
        source: dict = {}
        groups = set(Group.objects.values_list("name", flat=True))
        for i, item in items(doc, "policies"):
            slug = item["slug"]
            if slug in state:
                tree.problem(doc, ("policies", i, "slug"), f"policy {slug!r} is listed twice")
                continue
            stages = []
            for j, stage in enumerate(item.get("stages") or []):
                where = ("policies", i, "stages", j)
                kind = stage["approver"]
                if kind == "group" and stage.get("group") not in groups:
                    tree.problem(doc, (*where, "group"), f"no group {stage.get('group')!r}")
                if kind == "users" and not stage.get("users"):
                    tree.problem(doc, where, "a users stage names its users")
                _emails_exist(tree, doc, (*where, "users"), stage.get("users") or [], context)
                stages.append(
                    {
                        "name": stage.get("name", ""),
                        "approver": kind,
                        "required": stage.get("required", 1),
                        "group": stage.get("group") if kind == "group" else None,
                        "users": sorted(stage.get("users") or []),
                        "auto_approve_on_call": stage.get("auto_approve_on_call", False),
                    }
                )
            if not stages and not item.get("auto_approve_max_risk"):
                tree.problem(doc, ("policies", i), "a policy needs at least one stage")
            allow = sorted(item.get("auto_approve_users") or [])
            _emails_exist(tree, doc, ("policies", i, "auto_approve_users"), allow, context)
            state[slug] = {
                "name": item["name"],
                "description": item.get("description", ""),
                "auto_approve_max_risk": item.get("auto_approve_max_risk", ""),
                "auto_approve_peer_ratio": ratio(item.get("auto_approve_peer_ratio")),
                "auto_approve_users": allow,
                "sod_action": item.get("sod_action", "refuse"),
                "auto_approve_on_call": item.get("auto_approve_on_call", False),
                "remind_after": normal_duration(item.get("remind_after", "24h")),
                "escalate_after": normal_duration(item.get("escalate_after", "72h")),
                "expire_after": normal_duration(item.get("expire_after", "14d")),
                "stages": stages,
            }
            source[slug] = (doc.path, doc.line("policies", i))
        context["policies"] = set(state)
        return Desired(state, source)

    def export(self, state: State) -> dict:
        return {self.path: {"policies": [{"slug": k, **v} for k, v in sorted(state.items())]}}

    @staticmethod
    def _stages(want: dict) -> list[dict]:
        return [
            {
                "kind": s["approver"],
                "required": s["required"],
                "name": s["name"],
                "group": Group.objects.get(name=s["group"]) if s["group"] else None,
                "users": _users(s["users"]),
                "auto_approve_on_call": s["auto_approve_on_call"],
            }
            for s in want["stages"]
        ]

    @staticmethod
    def _fields(want: dict) -> dict:
        from decimal import Decimal

        ratio_value = want["auto_approve_peer_ratio"]
        return {
            "name": want["name"],
            "description": want["description"],
            "auto_approve_max_risk": want["auto_approve_max_risk"],
            "auto_approve_peer_ratio": Decimal(ratio_value) if ratio_value else None,
            "sod_action": want["sod_action"],
            "auto_approve_on_call": want["auto_approve_on_call"],
            "remind_after": duration_value(want["remind_after"]),
            "escalate_after": duration_value(want["escalate_after"]),
            "expire_after": duration_value(want["expire_after"]),
        }

    def create(self, key, want, actor) -> None:
        access.policy_create(
            actor=actor,
            slug=key,
            stages=self._stages(want),
            auto_approve_users=_users(want["auto_approve_users"]),
            **self._fields(want),
        )

    def update(self, key, have, want, actor) -> None:
        access.policy_update(
            actor=actor,
            policy=ApprovalPolicy.objects.get(slug=key),
            stages=self._stages(want) if have["stages"] != want["stages"] else None,
            auto_approve_users=_users(want["auto_approve_users"]),
            **self._fields(want),
        )

    def delete_note(self, key, have) -> str:
        used = Entitlement.objects.filter(policy__slug=key).count()
        return f"still used by {used} entitlement(s) in the database" if used else ""

    def delete(self, key, have, actor) -> str:
        access.policy_delete(actor=actor, policy=ApprovalPolicy.objects.get(slug=key))
        return "deleted"

    def instance(self, key):
        return ApprovalPolicy.objects.filter(slug=key).first()


# --- services -----------------------------------------------------------------------------
SERVICE_DEFAULTS = {"tier": 2, "description": "", "docs_url": "", "connector": ""}


class ServiceKind(Kind):
    name, path, label = "service", "services", "services"

    def current(self) -> State:
        return {
            s.slug: {
                "name": s.name,
                "owner_team": s.owner_team.slug,
                "tier": s.tier,
                "description": s.description,
                "docs_url": s.docs_url,
                "connector": s.connector,
                "connector_config": s.connector_config or {},
            }
            for s in Service.objects.filter(retired_at__isnull=True)
            .select_related("owner_team")
            .order_by("slug")
        }

    def desired(self, tree: Tree, context: dict) -> Desired:
        state: State = {}
        source: dict = {}
        teams = set(Team.objects.values_list("slug", flat=True))
        for doc in tree.under(self.path):
            item = doc.data
            slug = item["slug"]
            expected = doc.path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
            if slug != expected:
                tree.problem(doc, ("slug",), f"the file of service {slug!r} is named {slug}.yaml")
            if slug in state:
                tree.problem(doc, ("slug",), f"service {slug!r} is defined twice")
                continue
            if item["owner_team"] not in teams:
                tree.problem(doc, ("owner_team",), f"no team {item['owner_team']!r}")
            connector = item.get("connector", "")
            config = item.get("connector_config") or {}
            if connector or config:
                try:
                    if connector:
                        validate_config(connector, config)
                    else:
                        check_config_secrets(config)
                except ConfigError as exc:
                    tree.problem(doc, ("connector_config",), exc.message)
            state[slug] = {
                "name": item["name"],
                "owner_team": item["owner_team"],
                **{k: item.get(k, v) for k, v in SERVICE_DEFAULTS.items()},
                "connector_config": config,
            }
            # keep the field order of current()
            state[slug] = {k: state[slug][k] for k in self._order}
            source[slug] = (doc.path, 1)
        context["services"] = state
        return Desired(state, source)

    _order = (
        "name",
        "owner_team",
        "tier",
        "description",
        "docs_url",
        "connector",
        "connector_config",
    )

    def export(self, state: State) -> dict:
        # entitlements are written into the same files by EntitlementKind.export
        return {f"services/{k}.yaml": {"slug": k, **v} for k, v in state.items()}

    def _values(self, want: dict) -> dict:
        return {**want, "owner_team": Team.objects.get(slug=want["owner_team"])}

    def create(self, key, want, actor) -> None:
        retired = Service.objects.filter(slug=key, retired_at__isnull=False).first()
        if retired is not None:
            access.service_unretire(actor=actor, service=retired)
            access.service_update(actor=actor, service=retired, **self._values(want))
            return
        access.service_create(actor=actor, slug=key, **self._values(want))

    def update(self, key, have, want, actor) -> None:
        changed = {k: v for k, v in self._values(want).items() if have.get(k) != want.get(k)}
        access.service_update(actor=actor, service=Service.objects.get(slug=key), **changed)

    def delete_note(self, key, have) -> str:
        service = Service.objects.get(slug=key)
        if service.sync_jobs.exists() or service.entitlements.filter(grants__isnull=False).exists():
            return "retired, not deleted: its history refers to it"
        return ""

    def delete(self, key, have, actor) -> str:
        return access.service_remove(
            actor=actor, service=Service.objects.get(slug=key), reason=REASON
        )

    def instance(self, key):
        return Service.objects.filter(slug=key).first()


# --- entitlements -------------------------------------------------------------------------
ENTITLEMENT_DEFAULTS: dict[str, Any] = {
    "description": "",
    "risk": "low",
    "requestable": True,
    "default_duration_days": 30,
    "max_duration_days": 90,
    "seat_cost_monthly": "0.00",
    "policy": None,
    "allows_break_glass": False,
    "connector_config": {},
    "prerequisites": [],
}


class EntitlementKind(Kind):
    """Entitlements live inside their service's file (``entitlements:``)."""

    name, path, label = "entitlement", "services", "entitlements"

    def current(self) -> State:
        out: State = {}
        qs = (
            Entitlement.objects.filter(retired_at__isnull=True)
            .select_related("service", "policy")
            .prefetch_related("prerequisites__service")
            .order_by("service__slug", "slug")
        )
        for e in qs:
            out[f"{e.service.slug}/{e.slug}"] = {
                "name": e.name,
                "description": e.description,
                "risk": e.risk,
                "requestable": e.requestable,
                "default_duration_days": e.default_duration_days,
                "max_duration_days": e.max_duration_days,
                "seat_cost_monthly": money(e.seat_cost_monthly),
                "policy": e.policy.slug if e.policy is not None else None,
                "allows_break_glass": e.allows_break_glass,
                "connector_config": e.connector_config or {},
                "prerequisites": sorted(str(p) for p in e.prerequisites.all()),
            }
        return out

    def desired(self, tree: Tree, context: dict) -> Desired:
        state: State = {}
        source: dict = {}
        policies = context.get("policies")
        if policies is None:
            policies = set(ApprovalPolicy.objects.values_list("slug", flat=True))
        for doc in tree.under(self.path):
            service = doc.data["slug"]
            for i, item in items(doc, "entitlements"):
                key = f"{service}/{item['slug']}"
                where = ("entitlements", i)
                if key in state:
                    tree.problem(doc, (*where, "slug"), f"entitlement {key!r} is listed twice")
                    continue
                want = {**ENTITLEMENT_DEFAULTS, **{k: v for k, v in item.items() if k != "slug"}}
                want["seat_cost_monthly"] = parse_money(
                    tree, doc, (*where, "seat_cost_monthly"), want["seat_cost_monthly"]
                )
                want["prerequisites"] = sorted(want["prerequisites"])
                if want["default_duration_days"] > want["max_duration_days"]:
                    tree.problem(
                        doc,
                        (*where, "default_duration_days"),
                        f"default_duration_days ({want['default_duration_days']}) exceeds "
                        f"max_duration_days ({want['max_duration_days']})",
                    )
                if want["policy"] is not None and want["policy"] not in policies:
                    tree.problem(doc, (*where, "policy"), f"no policy {want['policy']!r}")
                state[key] = {"name": want["name"], **{k: want[k] for k in ENTITLEMENT_DEFAULTS}}
                source[key] = (doc.path, doc.line(*where))
        for key, want in state.items():
            for ref in want["prerequisites"]:
                if ref not in state:
                    file, _ = source[key]
                    doc = tree.file(file)
                    index = next(
                        i for i, it in items(doc, "entitlements") if it["slug"] == key.split("/")[1]
                    )
                    tree.problem(
                        doc,
                        ("entitlements", index, "prerequisites"),
                        f"prerequisite {ref!r} is not an entitlement of the configuration",
                    )
        context["entitlements"] = set(state)
        return Desired(state, source)

    def export(self, state: State) -> dict:
        by_service: dict[str, list] = {}
        for key, value in state.items():
            service, slug = key.split("/", 1)
            by_service.setdefault(service, []).append({"slug": slug, **value})
        return {f"services/{s}.yaml": {"entitlements": v} for s, v in sorted(by_service.items())}

    @staticmethod
    def _values(want: dict) -> dict:
        out = {k: v for k, v in want.items() if k not in ("prerequisites", "connector_config")}
        out["policy"] = ApprovalPolicy.objects.get(slug=want["policy"]) if want["policy"] else None
        return out

    def create(self, key, want, actor) -> None:
        service_slug, slug = key.split("/", 1)
        service = Service.objects.get(slug=service_slug)
        retired = Entitlement.objects.filter(service=service, slug=slug).first()
        values = self._values(want)
        if retired is not None:
            access.entitlement_unretire(actor=actor, entitlement=retired)
            access.entitlement_update(actor=actor, entitlement=retired, **values)
            ent = retired
        else:
            ent = access.entitlement_create(actor=actor, service=service, slug=slug, **values)
        if want["connector_config"] != (ent.connector_config or {}):
            _set_connector_config(ent, want["connector_config"], actor)

    def update(self, key, have, want, actor) -> None:
        ent = _entitlement(key)
        values = self._values(want)
        changed = {k: v for k, v in values.items() if have.get(k) != want.get(k)}
        if changed:
            access.entitlement_update(actor=actor, entitlement=ent, **changed)
        if have["connector_config"] != want["connector_config"]:
            _set_connector_config(ent, want["connector_config"], actor)

    def finish(self, changes, actor) -> None:
        for change in changes:
            if change.kind != self.name or change.op == "delete":
                continue
            before = (change.before or {}).get("prerequisites", [])
            if before == change.after["prerequisites"]:
                continue
            access.entitlement_set_prerequisites(
                actor=actor,
                entitlement=_entitlement(change.key),
                prerequisites=[_entitlement(r) for r in change.after["prerequisites"]],
            )

    def delete_note(self, key, have) -> str:
        ent = _entitlement(key)
        if is_deletable(ent):
            return "deleted (nothing refers to it)"
        held = list(
            Grant.objects.filter(entitlement=ent, status__in=HELD)
            .select_related("principal")
            .order_by("principal__email")
        )
        past = Grant.objects.filter(entitlement=ent).exclude(status__in=HELD).count()
        who = ", ".join(g.principal.email for g in held[:10]) + (" …" if len(held) > 10 else "")
        return (
            f"retired, not deleted (its history refers to it): {len(held)} held grant(s) "
            f"revoked{' (' + who + ')' if held else ''}; {past} past grant(s) kept"
        )

    def delete(self, key, have, actor) -> str:
        return access.entitlement_remove(actor=actor, entitlement=_entitlement(key), reason=REASON)

    def instance(self, key):
        service, slug = key.split("/", 1)
        return Entitlement.objects.filter(service__slug=service, slug=slug).first()


def _entitlement(key: str) -> Entitlement:
    service, slug = key.split("/", 1)
    return Entitlement.objects.select_related("service").get(service__slug=service, slug=slug)


def _set_connector_config(ent: Entitlement, config: dict, actor) -> None:
    from access.services.catalog_config import entitlement_set_connector_config

    entitlement_set_connector_config(actor=actor, entitlement=ent, connector_config=config)


# --- separation of duties -----------------------------------------------------------------
class ToxicPairKind(Kind):
    name, path, label = "toxic_pair", "toxic_pairs.yaml", "toxic pairs"

    def current(self) -> State:
        out: State = {}
        qs = ToxicPair.objects.filter(
            first__retired_at__isnull=True, second__retired_at__isnull=True
        ).select_related("first__service", "second__service")
        for p in qs:
            a, b = sorted([str(p.first), str(p.second)])
            out[f"{a} + {b}"] = {"first": a, "second": b, "reason": p.reason}
        return dict(sorted(out.items()))

    def desired(self, tree: Tree, context: dict) -> Desired:
        doc = tree.file(self.path)
        state: State = {}
        source: dict = {}
        known = context.get("entitlements")
        if known is None:
            known = {k for k in EntitlementKind().current()}
        for i, item in items(doc, "toxic_pairs"):
            a, b = sorted([item["first"], item["second"]])
            for field in ("first", "second"):
                if item[field] not in known:
                    tree.problem(doc, ("toxic_pairs", i, field), f"no entitlement {item[field]!r}")
            if a == b:
                tree.problem(doc, ("toxic_pairs", i), "a pair needs two different entitlements")
            key = f"{a} + {b}"
            if key in state:
                tree.problem(doc, ("toxic_pairs", i), f"the pair {key} is listed twice")
            state[key] = {"first": a, "second": b, "reason": item["reason"]}
            source[key] = (doc.path, doc.line("toxic_pairs", i))
        return Desired(dict(sorted(state.items())), source)

    def export(self, state: State) -> dict:
        return {self.path: {"toxic_pairs": list(state.values())}}

    def create(self, key, want, actor) -> None:
        access.toxic_pair_create(
            actor=actor,
            first=_entitlement(want["first"]),
            second=_entitlement(want["second"]),
            reason=want["reason"],
        )

    def update(self, key, have, want, actor) -> None:
        access.toxic_pair_update(actor=actor, pair=self.instance(key), reason=want["reason"])

    def delete(self, key, have, actor) -> str:
        access.toxic_pair_delete(actor=actor, pair=self.instance(key), reason=REASON)
        return "deleted"

    def instance(self, key):
        a, b = key.split(" + ")
        first, second = _entitlement(a), _entitlement(b)
        return ToxicPair.objects.filter(
            Q(first=first, second=second) | Q(first=second, second=first)
        ).first()
