"""``manage.py create_api_token --user EMAIL [--name N]``: print a new personal token once."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.models import User
from portal.core.actors import CLI
from portal.core.errors import DomainError
from tokens.models import Scope
from tokens.services import DEFAULT_EXPIRY, api_token_create


class Command(BaseCommand):
    help = "Create a personal API token for a person and print it (it is shown only once)."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="the person's e-mail")
        parser.add_argument("--name", default="cli", help="a label for the token")
        parser.add_argument(
            "--scope",
            action="append",
            choices=Scope.values,
            help="repeat for several; default: read and write",
        )
        parser.add_argument(
            "--expires-days",
            type=int,
            default=None,
            help="expire after N days (default: 90; 30 at most for admins and security)",
        )
        parser.add_argument(
            "--never-expires",
            action="store_true",
            help="never expire (read-only tokens of people without administrative roles only)",
        )

    def handle(self, *args, **options):
        email = options["user"].strip().lower()
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            raise CommandError(f"no such user: {email}")
        expires_at = DEFAULT_EXPIRY
        if options["never_expires"]:
            if options["expires_days"] is not None:
                raise CommandError("give --expires-days or --never-expires, not both")
            expires_at = None
        elif options["expires_days"] is not None:
            if options["expires_days"] < 1:
                raise CommandError("--expires-days must be at least 1")
            expires_at = timezone.now() + timedelta(days=options["expires_days"])
        try:
            token, plaintext = api_token_create(
                actor=CLI,
                user=user,
                name=options["name"],
                scopes=options["scope"],
                expires_at=expires_at,
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stderr.write(
            f"Created token {token.name!r} ({token.prefix}…) for {user.email}; "
            "it is shown only once:"
        )
        self.stdout.write(plaintext)
