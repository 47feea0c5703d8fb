"""``manage.py create_service_token --service SLUG [--name N] [--scope-all]``.

Prints a new service token once. The token may call the check API only (scope
``check``), for its own service; ``--scope-all`` adds ``check:*`` (any service).
Only the SHA-256 hash is stored; revoke it from the admin or the tokens UI.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from access.models import Service
from audit.services import audit_record
from tokens import registry as actions
from tokens.authentication import CHECK_ANY_SERVICE_SCOPE, CHECK_SCOPE
from tokens.models import PREFIX_LENGTH, ApiToken
from tokens.services import generate_secret, hash_secret

ACTOR = "cli:create_service_token"


def service_token_create(*, actor, service: Service, name: str, scope_all: bool = False):
    """Create a service token; returns (token, plaintext). The plaintext is not stored."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise CommandError("give the token a name of at most 100 characters")
    scopes = [CHECK_SCOPE, CHECK_ANY_SERVICE_SCOPE] if scope_all else [CHECK_SCOPE]
    plaintext = generate_secret()
    with transaction.atomic():
        token = ApiToken.objects.create(
            service=service,
            name=name,
            prefix=plaintext[:PREFIX_LENGTH],
            key_hash=hash_secret(plaintext),
            scopes=scopes,
        )
        audit_record(
            actor=actor,
            action=actions.TOKEN_CREATED,
            target=token,
            after={
                "service": service.slug,
                "name": name,
                "prefix": token.prefix,
                "scopes": scopes,
            },
        )
    return token, plaintext


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
            actor=ACTOR, service=service, name=options["name"], scope_all=options["scope_all"]
        )
        self.stderr.write(
            f"Created service token {token.name!r} ({token.prefix}…) for {service.slug} "
            f"with scopes {', '.join(token.scopes)}; it is shown only once:"
        )
        self.stdout.write(plaintext)
