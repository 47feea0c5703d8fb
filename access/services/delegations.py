"""Delegations: an approver's stand-in for a period."""

from __future__ import annotations

from datetime import date, timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from audit.services import audit_record
from portal.core.errors import Conflict, NotFound, ValidationError

from .. import registry as actions
from ..models import Delegation


def delegation_create(
    *, actor: User, delegate: User, starts_on: date, ends_on: date, reason: str = ""
) -> Delegation:
    if delegate.pk == actor.pk:
        raise ValidationError("you cannot delegate to yourself", field="delegate")
    if not delegate.is_active:
        raise ValidationError(f"{delegate.email} is not active", field="delegate")
    if ends_on < starts_on:
        raise ValidationError("the delegation ends before it starts", field="ends_on")
    if ends_on < timezone.localdate():
        raise ValidationError("the delegation is entirely in the past", field="ends_on")
    with transaction.atomic():
        delegation = Delegation.objects.create(
            delegator=actor, delegate=delegate, starts_on=starts_on, ends_on=ends_on, reason=reason
        )
        audit_record(
            actor=actor,
            action=actions.DELEGATION_CREATED,
            target=delegation,
            after={"delegate": delegate.email, "starts_on": starts_on, "ends_on": ends_on},
            reason=reason,
        )
    return delegation


def delegation_end(*, actor: User, delegation_id: int) -> Delegation:
    with transaction.atomic():
        delegation = (
            Delegation.objects.select_for_update().filter(pk=delegation_id, delegator=actor).first()
        )
        if delegation is None:
            raise NotFound("no such delegation of yours")
        today = timezone.localdate()
        if delegation.ends_on < today:
            raise Conflict("this delegation has already ended")
        before = {"starts_on": delegation.starts_on, "ends_on": delegation.ends_on}
        delegation.ends_on = today - timedelta(days=1)
        delegation.starts_on = min(delegation.starts_on, delegation.ends_on)
        delegation.save(update_fields=["starts_on", "ends_on"])
        audit_record(
            actor=actor,
            action=actions.DELEGATION_ENDED,
            target=delegation,
            before=before,
            after={"starts_on": delegation.starts_on, "ends_on": delegation.ends_on},
        )
    return delegation
