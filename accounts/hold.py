"""The mass-leave hold of the directory service: a change that would make too many people
leave within an hour is kept for a person to confirm. SCIM pushes (``scim.services``) and LDAP
runs (``accounts.sources``) both ask :func:`leavers_over_share` as the ``hold`` of
``accounts.services.directory_people_apply`` / ``directory_import``."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from audit import registry as actions
from audit.models import AuditEvent

from .models import User

DIRECTORY_HELD = actions.register(
    "directory.held", "A directory run was held: too many people would leave within an hour"
)


def leavers_over_share(plan) -> bool:
    """Whether applying ``plan`` would make more than the allowed share of active people
    leavers within an hour (leavers of the last hour by any path count too)."""
    new = plan.counts()["left"]
    if not new:
        return False
    since = timezone.now() - timedelta(hours=1)
    recent = AuditEvent.objects.filter(action=actions.USER_LEFT, occurred_at__gte=since).count()
    active = User.objects.filter(is_active=True).count()
    allowed = max(
        settings.TOLLGATE_SCIM_LEAVER_FLOOR,
        settings.TOLLGATE_SCIM_MAX_LEAVER_SHARE * (active + recent),
    )
    return recent + new > allowed
