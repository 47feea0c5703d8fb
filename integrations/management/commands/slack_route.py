"""manage.py slack_route add CHANNEL_ID [--service SLUG] [--team SLUG] [--min-risk RISK] |
list | remove ID: announce requests to Slack channels (besides the approvers' DMs)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from access.models import Service
from accounts.models import Team
from integrations.models import SlackRoute
from integrations.slack.routes import slack_route_create, slack_route_delete
from portal.core.actors import CLI
from portal.core.errors import DomainError


class Command(BaseCommand):
    help = "Add, list or remove Slack channel routes of requests."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add")
        add.add_argument("channel_id")
        add.add_argument("--service", default="")
        add.add_argument("--team", default="")
        add.add_argument("--min-risk", dest="min_risk", default="")
        sub.add_parser("list")
        remove = sub.add_parser("remove")
        remove.add_argument("route_id", type=int)

    def handle(self, *args, action: str, **options):
        try:
            if action == "list":
                for r in SlackRoute.objects.select_related("service", "team"):
                    self.stdout.write(
                        f"#{r.pk} {r.channel_id} service={r.service.slug if r.service else '*'} "
                        f"team={r.team.slug if r.team else '*'} min_risk={r.min_risk or '*'}"
                    )
                return
            if action == "remove":
                slack_route_delete(actor=CLI, route_id=options["route_id"])
                self.stdout.write(f"removed route #{options['route_id']}")
                return
            service = team = None
            if options["service"]:
                service = Service.objects.filter(slug=options["service"]).first()
                if service is None:
                    raise CommandError(f"no service {options['service']}")
            if options["team"]:
                team = Team.objects.filter(slug=options["team"]).first()
                if team is None:
                    raise CommandError(f"no team {options['team']}")
            route = slack_route_create(
                actor=CLI,
                channel_id=options["channel_id"],
                service=service,
                team=team,
                min_risk=options["min_risk"],
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"added route #{route.pk} -> {route.channel_id}")
