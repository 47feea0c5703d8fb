"""``manage.py create_scim_token --name NAME [--as EMAIL]``: a SCIM client; prints its token once."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from portal.core.actors import CLI
from portal.core.errors import DomainError
from scim.services import scim_client_create


class Command(BaseCommand):
    help = "Create a SCIM client for an identity provider and print its bearer token (shown once)."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="the client's name, e.g. okta")
        parser.add_argument(
            "--as",
            dest="as_email",
            default=None,
            help="act as this person (must be a platform admin); default: the operator (cli)",
        )

    def handle(self, *args, **options):
        actor = CLI
        if options["as_email"]:
            actor = User.objects.filter(email__iexact=options["as_email"].strip()).first()
            if actor is None:
                raise CommandError(f"no such user: {options['as_email']}")
        try:
            client, plaintext = scim_client_create(actor=actor, name=options["name"])
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(plaintext)
        self.stderr.write(
            f"SCIM client {client.name!r} created (actor system:scim.{client.slug}); "
            "the token above is shown only once. Base URL: <your Tollgate>/scim/v2/"
        )
