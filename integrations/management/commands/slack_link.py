"""manage.py slack_link EMAIL SLACK_USER_ID [--remove]: link a person to their Slack user id
(for workspaces that hide e-mails from bots, and for tests), or remove the link."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from integrations.slack.identities import slack_link_create, slack_link_remove
from portal.core.actors import CLI
from portal.core.errors import DomainError


class Command(BaseCommand):
    help = "Link a person (by e-mail) to a Slack user id, or remove the link (--remove)."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("slack_user_id", nargs="?", default="")
        parser.add_argument("--remove", action="store_true", help="remove the person's link")

    def handle(self, *args, email: str, slack_user_id: str, remove: bool, **options):
        user = User.objects.filter(email__iexact=email.strip()).first()
        if user is None:
            raise CommandError(f"no person with e-mail {email}")
        try:
            if remove:
                slack_link_remove(actor=CLI, user=user)
                self.stdout.write(f"removed the Slack link of {user.email}")
                return
            if not slack_user_id:
                raise CommandError("give the Slack user id (like U012ABCDEF), or --remove")
            link = slack_link_create(actor=CLI, user=user, slack_user_id=slack_user_id)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"linked {user.email} to Slack user {link.slack_user_id}")
