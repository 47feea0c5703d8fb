"""``manage.py create_service_token --service SLUG [--name N] [--scope-all]``.

Prints a new service token once. The token may call the check API only (scope
``check``), for its own service; ``--scope-all`` adds ``check:*`` (any service).
Only the SHA-256 hash is stored; admins create and revoke them on the tokens page too.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from access.models import Service
from portal.core.actors import CLI
from portal.core.errors import ValidationError
from tokens import services


def service_token_create(*, actor, service: Service, name: str, scope_all: bool = False):
    """The service (tokens.services.service_token_create), with errors as CommandError."""
    try:
        return services.service_token_create(
            actor=actor, service=service, name=name, scope_all=scope_all
        )
    except ValidationError as exc:
        raise CommandError(exc.message) from exc


class Command(BaseCommand):
    help = "Create a service token for the check API and print it (it is shown only once)."

    def add_arguments(self, parser):
        parser.add_argument("--service", required=True, help="the service's slug")
        parser.add_argument("--name", default="check", help="a label for the token")
        parser.add_argument(
            "--scope-all",
            action="store_true",
            help="may check every service (scope check:*), not only its own",
        )

    def handle(self, *args, **options):
        service = Service.objects.filter(slug=options["service"]).first()
        if service is None:
            raise CommandError(f"no such service: {options['service']}")
        token, plaintext = service_token_create(
            actor=CLI, service=service, name=options["name"], scope_all=options["scope_all"]
        )
        self.stderr.write(
            f"Created service token {token.name!r} ({token.prefix}…) for {service.slug} "
            f"with scopes {', '.join(token.scopes)}; it is shown only once:"
        )
        self.stdout.write(plaintext)
