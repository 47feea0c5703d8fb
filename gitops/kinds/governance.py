"""Kinds owned by other apps: standards (their existing YAML format), team budgets and cost
attribution rules. Each is written through its app's services."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from accounts.models import Team
from costs.analytics.models import Budget
from costs.analytics.services import budget_delete, budget_set
from costs.models import AttributionRule
from costs.services import RULE_FIELDS, rule_save
from standards.document import PolicyDocumentError, dump, parse
from standards.models import Standard
from standards.selectors import current_rules
from standards.services import standards_apply

from ..tree import Problem, Tree
from .base import Desired, Kind, State, items, money, parse_money


# --- standards ----------------------------------------------------------------------------
class StandardKind(Kind):
    """``standards.yaml`` is the standards document as ``standards_export`` writes it; the
    whole document is applied as one new standards version."""

    name, path, label = "standard", "standards.yaml", "standards"

    def current(self) -> State:
        return {r.key: r.as_document() for r in sorted(current_rules(), key=lambda r: r.key)}

    def desired(self, tree: Tree, context: dict) -> Desired:
        doc = tree.doc(self.path)
        if doc is None or not (doc.text or "").strip() or doc.data in (None, []):
            return Desired({}, {})
        try:
            rules = parse(doc.text)
        except PolicyDocumentError as exc:
            for problem in exc.problems:
                where = f"{problem.where}: " if problem.where else ""
                tree.problems.append(Problem(doc.path, problem.line, f"{where}{problem.reason}"))
            return Desired({}, {})
        state = {r.key: r.as_document() for r in sorted(rules, key=lambda r: r.key)}
        source = {r.key: (doc.path, doc.line(i)) for i, r in enumerate(rules)}
        context["standard_rules"] = rules
        return Desired(state, source)

    def export(self, state: State) -> dict:
        return {self.path: list(state.values())}

    def apply_all(self, desired: State, actor) -> None:
        from standards.document import Rule

        rules = [
            Rule(
                key=key,
                title=d["title"],
                severity=d["severity"],
                owner=d["owner"],
                kind=d["check"]["kind"],
                scope=dict(d.get("scope") or {}),
                params={k: v for k, v in d["check"].items() if k != "kind"},
                description=d.get("description", ""),
            )
            for key, d in desired.items()
        ]
        standards_apply(actor=actor, text=dump(rules) if rules else "[]\n", check_base=False)

    def instance(self, key):
        return Standard.objects.filter(key=key, active=True).first()


# --- budgets ------------------------------------------------------------------------------
class BudgetKind(Kind):
    name, path, label = "budget", "budgets.yaml", "budgets"

    def current(self) -> State:
        out: State = {}
        for b in Budget.objects.select_related("team").order_by("team__slug", "month"):
            out[f"{b.team.slug}/{b.month:%Y-%m}"] = {
                "team": b.team.slug,
                "month": f"{b.month:%Y-%m}",
                "amount": money(b.amount),
                "currency": b.currency,
                "thresholds": sorted(b.thresholds or []),
            }
        return out

    def desired(self, tree: Tree, context: dict) -> Desired:
        doc = tree.file(self.path)
        state: State = {}
        source: dict = {}
        teams = set(Team.objects.values_list("slug", flat=True))
        for i, item in items(doc, "budgets"):
            key = f"{item['team']}/{item['month']}"
            if item["team"] not in teams:
                tree.problem(doc, ("budgets", i, "team"), f"no team {item['team']!r}")
            if key in state:
                tree.problem(doc, ("budgets", i), f"the budget {key} is listed twice")
            state[key] = {
                "team": item["team"],
                "month": item["month"],
                "amount": parse_money(tree, doc, ("budgets", i, "amount"), item["amount"]),
                "currency": item.get("currency", "USD"),
                "thresholds": sorted(item.get("thresholds") or []),
            }
            source[key] = (doc.path, doc.line("budgets", i))
        return Desired(dict(sorted(state.items())), source)

    def export(self, state: State) -> dict:
        return {self.path: {"budgets": list(state.values())}}

    @staticmethod
    def _month(text: str) -> dt.date:
        return dt.date.fromisoformat(text + "-01")

    def create(self, key, want, actor) -> None:
        budget_set(
            actor=actor,
            team=Team.objects.get(slug=want["team"]),
            month=self._month(want["month"]),
            amount=Decimal(want["amount"]),
            currency=want["currency"],
            thresholds=want["thresholds"],
        )

    def update(self, key, have, want, actor) -> None:
        self.create(key, want, actor)

    def delete(self, key, have, actor) -> str:
        budget_delete(
            actor=actor, team=Team.objects.get(slug=have["team"]), month=self._month(have["month"])
        )
        return "deleted"

    def instance(self, key):
        team, month = key.split("/", 1)
        return Budget.objects.filter(team__slug=team, month=self._month(month)).first()


# --- attribution rules --------------------------------------------------------------------
RULE_DEFAULTS: dict[str, Any] = {
    "position": None,
    "enabled": True,
    "tag_key": "",
    "tag_value": "",
    "billing_account_id": "",
    "sub_account_id": "",
    "resource_pattern": "",
    "resource_pattern_kind": "glob",
    "service_name": "",
    "region": "",
    "method": "direct",
    "team": None,
    "target_service": "",
    "target_project": "",
    "proportional_category": "",
    "shares": [],
}


class AttributionRuleKind(Kind):
    """Ordered rules; a rule absent from the file is disabled (lines attributed by it keep
    their history), never deleted."""

    name, path, label = "attribution_rule", "attribution_rules.yaml", "attribution rules"

    def current(self) -> State:
        out: State = {}
        for r in (
            AttributionRule.objects.select_related("team")
            .prefetch_related("shares__team")
            .order_by("position", "name")
        ):
            value = {f: getattr(r, f) for f in RULE_FIELDS if f != "name"}
            value["team"] = r.team.slug if r.team is not None else None
            value["shares"] = [
                {"team": s.team.slug, "weight": str(s.weight.normalize())}
                for s in sorted(r.shares.all(), key=lambda s: s.team.slug)
            ]
            out[r.name] = {k: value[k] for k in RULE_DEFAULTS}
        return out

    def desired(self, tree: Tree, context: dict) -> Desired:
        doc = tree.file(self.path)
        state: State = {}
        source: dict = {}
        teams = set(Team.objects.values_list("slug", flat=True))
        for i, item in items(doc, "attribution_rules"):
            name = item["name"]
            if name in state:
                tree.problem(
                    doc, ("attribution_rules", i, "name"), f"rule {name!r} is listed twice"
                )
            value = {**RULE_DEFAULTS, **{k: v for k, v in item.items() if k != "name"}}
            if value["position"] is None:
                value["position"] = (i + 1) * 10
            for where, slug in [(("team",), value["team"])] + [
                (("shares", j, "team"), s["team"]) for j, s in enumerate(value["shares"])
            ]:
                if slug and slug not in teams:
                    tree.problem(doc, ("attribution_rules", i, *where), f"no team {slug!r}")
            if value["method"] == "direct" and not value["team"]:
                tree.problem(doc, ("attribution_rules", i), "a rule to one team names the team")
            if value["method"] != "direct":
                value["team"] = None
            value["shares"] = sorted(
                (
                    {"team": s["team"], "weight": str(Decimal(str(s.get("weight", 1))).normalize())}
                    for s in value["shares"]
                ),
                key=lambda s: s["team"],
            )
            state[name] = value
            source[name] = (doc.path, doc.line("attribution_rules", i))
        return Desired(state, source)

    def export(self, state: State) -> dict:
        return {self.path: {"attribution_rules": [{"name": k, **v} for k, v in state.items()]}}

    def deleted(self, key, have) -> bool:
        return bool(have["enabled"])

    def delete_note(self, key, have) -> str:
        return "disabled, not deleted (cost lines keep their history)"

    def _save(self, key, want, actor, rule) -> None:
        data = {k: v for k, v in want.items() if k != "shares"}
        data["name"] = key
        rule_save(
            actor=actor,
            rule=rule,
            data=data,
            shares=[(s["team"], s["weight"]) for s in want["shares"]],
        )

    def create(self, key, want, actor) -> None:
        self._save(key, want, actor, AttributionRule.objects.filter(name=key).first())

    def update(self, key, have, want, actor) -> None:
        self._save(key, want, actor, AttributionRule.objects.get(name=key))

    def delete(self, key, have, actor) -> str:
        self._save(key, {**have, "enabled": False}, actor, AttributionRule.objects.get(name=key))
        return "disabled"

    def instance(self, key):
        return AttributionRule.objects.filter(name=key).first()
