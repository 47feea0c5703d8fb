"""Plumbing only: record sign-in events in the audit trail (no domain logic here)."""

from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.dispatch import receiver

from audit import registry as actions
from audit.services import audit_record


@receiver(user_logged_in)
def _audit_login(sender, request, user, **kwargs):
    with transaction.atomic():
        audit_record(actor=user, action=actions.AUTH_LOGIN, target=user)


@receiver(user_logged_out)
def _audit_logout(sender, request, user, **kwargs):
    if user is None:
        return
    with transaction.atomic():
        audit_record(actor=user, action=actions.AUTH_LOGOUT, target=user)


@receiver(user_login_failed)
def _audit_login_failed(sender, credentials, request=None, **kwargs):
    attempted = str(credentials.get("email") or credentials.get("username") or "")[:254]
    with transaction.atomic():
        audit_record(
            actor=AnonymousUser(),
            action=actions.AUTH_LOGIN_FAILED,
            target_type="accounts.user",
            target_id="",
            after={"attempted": attempted},
        )
