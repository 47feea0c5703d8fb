"""Notification routes (``notification_routes.yaml``): the Slack channels requests are
announced to, by service, team and minimum risk. Written through ``integrations.slack.routes``
(audited as ``gitops:<name>``).

A route has no name of its own: it is keyed by what it says (channel, service, team, minimum
risk), so a change of any of them is a removal and a creation.
"""

from __future__ import annotations

from access.models import Service
from access.models.catalog import Risk
from accounts.models import Team
from integrations.models import SlackRoute
from integrations.slack.routes import CHANNEL_ID, slack_route_create, slack_route_delete

from ..tree import Tree
from .base import Desired, Kind, State, items


def route_key(channel: str, service: str | None, team: str | None, min_risk: str) -> str:
    return f"{channel} service={service or '*'} team={team or '*'} min_risk={min_risk or '*'}"


class NotificationRouteKind(Kind):
    name, path, label = "notification_route", "notification_routes.yaml", "notification routes"

    def _rows(self, key: str) -> list[SlackRoute]:
        return [
            r
            for r in SlackRoute.objects.select_related("service", "team").order_by("pk")
            if route_key(
                r.channel_id,
                r.service.slug if r.service else None,
                r.team.slug if r.team else None,
                r.min_risk,
            )
            == key
        ]

    def current(self) -> State:
        out: State = {}
        for r in SlackRoute.objects.select_related("service", "team").order_by("pk"):
            service = r.service.slug if r.service else None
            team = r.team.slug if r.team else None
            out.setdefault(
                route_key(r.channel_id, service, team, r.min_risk),
                {"channel": r.channel_id, "service": service, "team": team, "min_risk": r.min_risk},
            )
        return dict(sorted(out.items()))

    def desired(self, tree: Tree, context: dict) -> Desired:
        doc = tree.file(self.path)
        state: State = {}
        source: dict = {}
        services = set(
            Service.objects.filter(retired_at__isnull=True).values_list("slug", flat=True)
        ) | set(context.get("services", ()))
        teams = set(Team.objects.values_list("slug", flat=True))
        for i, item in items(doc, "notification_routes"):
            where = ("notification_routes", i)
            channel = item["channel"]
            service, team = item.get("service"), item.get("team")
            min_risk = item.get("min_risk") or ""
            if not CHANNEL_ID.match(channel):
                tree.problem(
                    doc, (*where, "channel"), f"{channel!r} is not a Slack channel id (C012ABCDEF)"
                )
            if service and service not in services:
                tree.problem(doc, (*where, "service"), f"no service {service!r}")
            if team and team not in teams:
                tree.problem(doc, (*where, "team"), f"no team {team!r}")
            if min_risk and min_risk not in Risk.values:
                tree.problem(doc, (*where, "min_risk"), f"no risk {min_risk!r}")
            key = route_key(channel, service, team, min_risk)
            if key in state:
                tree.problem(doc, where, f"the route {key} is listed twice")
            state[key] = {
                "channel": channel,
                "service": service or None,
                "team": team or None,
                "min_risk": min_risk,
            }
            source[key] = (doc.path, doc.line(*where))
        return Desired(dict(sorted(state.items())), source)

    def export(self, state: State) -> dict:
        return {self.path: {"notification_routes": list(state.values())}}

    def create(self, key, want, actor) -> None:
        slack_route_create(
            actor=actor,
            channel_id=want["channel"],
            service=Service.objects.get(slug=want["service"]) if want["service"] else None,
            team=Team.objects.get(slug=want["team"]) if want["team"] else None,
            min_risk=want["min_risk"],
        )

    def update(self, key, have, want, actor) -> None:  # the key is the whole route
        raise AssertionError("a notification route is never updated in place")

    def delete(self, key, have, actor) -> str:
        for row in self._rows(key):
            slack_route_delete(actor=actor, route_id=row.pk)
        return "deleted"

    def instance(self, key):
        rows = self._rows(key)
        return rows[0] if rows else None
