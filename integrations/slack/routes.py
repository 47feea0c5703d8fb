"""Channel routes: announce requests to Slack channels by service, team or risk (audited)."""

from __future__ import annotations

import re

from django.db import transaction

from access.models import Service
from access.models.catalog import Risk
from accounts.models import Team
from audit.services import audit_record
from portal.core.actors import CLI, GITOPS, Actor, actor_may
from portal.core.errors import NotFound, NotPermitted, ValidationError

from .. import registry as actions
from ..models import SlackRoute
from ..policies import may_manage_slack_routes

CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,30}$")
# The command line, and the configuration repository (notification_routes.yaml, reviewed in a
# pull request) besides people.
ROUTE_SYSTEMS = (CLI, GITOPS)


def slack_route_create(
    *,
    actor: Actor,
    channel_id: str,
    service: Service | None = None,
    team: Team | None = None,
    min_risk: str = "",
) -> SlackRoute:
    if not actor_may(actor, may_manage_slack_routes, systems=ROUTE_SYSTEMS):
        raise NotPermitted("only platform admins and security route requests to channels")
    if not CHANNEL_ID.match(channel_id or ""):
        raise ValidationError(
            f"{channel_id!r} is not a Slack channel id (like C012ABCDEF)", field="channel_id"
        )
    if min_risk and min_risk not in Risk.values:
        raise ValidationError(f"min_risk must be one of {', '.join(Risk.values)}", field="min_risk")
    with transaction.atomic():
        route = SlackRoute.objects.create(
            channel_id=channel_id, service=service, team=team, min_risk=min_risk
        )
        audit_record(
            actor=actor,
            action=actions.SLACK_ROUTE_CREATED,
            target=route,
            after={
                "channel_id": channel_id,
                "service": service.slug if service else None,
                "team": team.slug if team else None,
                "min_risk": min_risk or None,
            },
        )
    return route


def slack_route_delete(*, actor: Actor, route_id: int) -> None:
    if not actor_may(actor, may_manage_slack_routes, systems=ROUTE_SYSTEMS):
        raise NotPermitted("only platform admins and security route requests to channels")
    with transaction.atomic():
        route = SlackRoute.objects.filter(pk=route_id).first()
        if route is None:
            raise NotFound(f"no Slack route #{route_id}")
        audit_record(
            actor=actor,
            action=actions.SLACK_ROUTE_DELETED,
            target=route,
            before={"channel_id": route.channel_id},
        )
        route.delete()
