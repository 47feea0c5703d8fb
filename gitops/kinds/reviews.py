"""Review campaign templates (``review_templates.yaml``), written through
``reviews.campaign_templates`` (audited as ``gitops:<name>``)."""

from __future__ import annotations

from access.models import Risk, Service
from accounts.models import Team
from reviews.campaign_templates import template_delete, template_save
from reviews.models import Campaign, CampaignTemplate

from ..tree import Tree
from .base import Desired, Kind, State, duration_text, duration_value, items, normal_duration


class ReviewTemplateKind(Kind):
    name, path, label = "review_template", "review_templates.yaml", "review templates"

    def current(self) -> State:
        return {
            t.slug: {
                "name": t.name,
                "scope": t.scope,
                "service": t.scope_service.slug if t.scope_service else None,
                "team": t.scope_team.slug if t.scope_team else None,
                "risk": t.scope_risk,
                "reviewer": t.reviewer_rule,
                "deadline_action": t.deadline_action,
                "duration": duration_text(t.duration),
                "cadence": duration_text(t.cadence) if t.cadence else None,
            }
            for t in CampaignTemplate.objects.select_related("scope_service", "scope_team")
        }

    def desired(self, tree: Tree, context: dict) -> Desired:
        doc = tree.file(self.path)
        state: State = {}
        source: dict = {}
        services = set(
            Service.objects.filter(retired_at__isnull=True).values_list("slug", flat=True)
        ) | set(context.get("services", ()))
        teams = set(Team.objects.values_list("slug", flat=True))
        for i, item in items(doc, "review_templates"):
            where = ("review_templates", i)
            slug, scope = item["slug"], item["scope"]
            if slug in state:
                tree.problem(doc, (*where, "slug"), f"template {slug!r} is listed twice")
                continue
            service = item.get("service") if scope == Campaign.Scope.SERVICE else None
            team = item.get("team") if scope == Campaign.Scope.TEAM else None
            risk = item.get("risk") or "" if scope == Campaign.Scope.RISK else ""
            if scope == Campaign.Scope.SERVICE and service not in services:
                tree.problem(doc, (*where, "service"), f"scope service: no service {service!r}")
            if scope == Campaign.Scope.TEAM and team not in teams:
                tree.problem(doc, (*where, "team"), f"scope team: no team {team!r}")
            if scope == Campaign.Scope.RISK and risk not in Risk.values:
                tree.problem(doc, (*where, "risk"), f"scope risk: no risk {risk!r}")
            duration = normal_duration(item.get("duration", "14d"))
            cadence = normal_duration(item["cadence"]) if item.get("cadence") else None
            if duration_value(duration).total_seconds() < 86400:
                tree.problem(doc, (*where, "duration"), "a campaign lasts at least a day")
            if cadence and duration_value(cadence) < duration_value(duration):
                tree.problem(doc, (*where, "cadence"), "the cadence is shorter than the duration")
            state[slug] = {
                "name": item["name"],
                "scope": scope,
                "service": service,
                "team": team,
                "risk": risk,
                "reviewer": item["reviewer"],
                "deadline_action": item.get("deadline_action", "escalate"),
                "duration": duration,
                "cadence": cadence,
            }
            source[slug] = (doc.path, doc.line(*where))
        return Desired(dict(sorted(state.items())), source)

    def export(self, state: State) -> dict:
        return {
            self.path: {"review_templates": [{"slug": k, **v} for k, v in sorted(state.items())]}
        }

    def _save(self, key, want, actor) -> None:
        template_save(
            actor=actor,
            slug=key,
            name=want["name"],
            scope=want["scope"],
            service=Service.objects.get(slug=want["service"]) if want["service"] else None,
            team=Team.objects.get(slug=want["team"]) if want["team"] else None,
            risk=want["risk"],
            reviewer_rule=want["reviewer"],
            deadline_action=want["deadline_action"],
            duration=duration_value(want["duration"]),
            cadence=duration_value(want["cadence"]) if want["cadence"] else None,
        )

    def create(self, key, want, actor) -> None:
        self._save(key, want, actor)

    def update(self, key, have, want, actor) -> None:
        self._save(key, want, actor)

    def delete(self, key, have, actor) -> str:
        template_delete(actor=actor, template=CampaignTemplate.objects.get(slug=key))
        return "deleted"

    def instance(self, key):
        return CampaignTemplate.objects.filter(slug=key).first()
