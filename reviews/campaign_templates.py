"""Campaign templates: a campaign to run again and again, started by hand or by its cadence
(the reviews beat task), and kept in the configuration tree (``review_templates.yaml``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q
from django.utils import timezone

from access.models import Risk, Service
from accounts.models import Team
from audit.services import audit_record
from portal.core.actors import GITOPS, REVIEWS, actor_may, is_system
from portal.core.errors import NotPermitted, ValidationError

from . import registry as actions
from .models import Campaign, CampaignTemplate
from .policies import may_manage_campaigns
from .services import campaign_start

MIN_DURATION = timedelta(days=1)


def _snapshot(t: CampaignTemplate) -> dict:
    return {
        "name": t.name,
        "scope": t.scope,
        "service": t.scope_service.slug if t.scope_service else None,
        "team": t.scope_team.slug if t.scope_team else None,
        "risk": t.scope_risk,
        "reviewer_rule": t.reviewer_rule,
        "deadline_action": t.deadline_action,
        "duration_s": int(t.duration.total_seconds()),
        "cadence_s": int(t.cadence.total_seconds()) if t.cadence else None,
    }


def template_save(
    *,
    actor,
    slug: str,
    name: str,
    scope: str,
    reviewer_rule: str,
    deadline_action: str = Campaign.DeadlineAction.ESCALATE,
    duration: timedelta = timedelta(days=14),
    cadence: timedelta | None = None,
    service: Service | None = None,
    team: Team | None = None,
    risk: str = "",
) -> CampaignTemplate:
    """Create or change the template ``slug`` (security, platform admins, or the
    configuration repository). Audited with what changed."""
    if not actor_may(actor, may_manage_campaigns, systems=(GITOPS,)):
        raise NotPermitted("only security or a platform admin defines review templates")
    if not (name or "").strip():
        raise ValidationError("name the template", field="name")
    if scope not in Campaign.Scope.values:
        raise ValidationError(
            f"scope must be one of {', '.join(Campaign.Scope.values)}", field="scope"
        )
    if scope == Campaign.Scope.SERVICE and service is None:
        raise ValidationError("a service scope names its service", field="service")
    if scope == Campaign.Scope.TEAM and team is None:
        raise ValidationError("a team scope names its team", field="team")
    if scope == Campaign.Scope.RISK and risk not in Risk.values:
        raise ValidationError(f"a risk scope names a risk: {', '.join(Risk.values)}", field="risk")
    if reviewer_rule not in Campaign.Reviewer.values:
        raise ValidationError(
            f"reviewer must be one of {', '.join(Campaign.Reviewer.values)}", field="reviewer"
        )
    if deadline_action not in Campaign.DeadlineAction.values:
        raise ValidationError(
            f"deadline_action must be one of {', '.join(Campaign.DeadlineAction.values)}",
            field="deadline_action",
        )
    if duration < MIN_DURATION:
        raise ValidationError("a campaign lasts at least a day", field="duration")
    if cadence is not None and cadence < duration:
        raise ValidationError(
            "the cadence is shorter than the duration: campaigns would overlap", field="cadence"
        )
    fields = {
        "name": name.strip(),
        "scope": scope,
        "scope_service": service if scope == Campaign.Scope.SERVICE else None,
        "scope_team": team if scope == Campaign.Scope.TEAM else None,
        "scope_risk": risk if scope == Campaign.Scope.RISK else "",
        "reviewer_rule": reviewer_rule,
        "deadline_action": deadline_action,
        "duration": duration,
        "cadence": cadence,
    }
    with transaction.atomic():
        template = CampaignTemplate.objects.select_for_update().filter(slug=slug).first()
        before = _snapshot(template) if template is not None else None
        if template is None:
            template = CampaignTemplate(slug=slug)
        for key, value in fields.items():
            setattr(template, key, value)
        template.updated_at = timezone.now()
        after = _snapshot(template)
        if before == after:
            return template
        template.full_clean(exclude=["scope_service", "scope_team"])
        template.save()
        audit_record(
            actor=actor,
            action=actions.TEMPLATE_SAVED,
            target=template,
            before=before,
            after={"slug": slug, **after},
        )
    return template


def template_delete(*, actor, template: CampaignTemplate) -> None:
    """Remove a template; the campaigns started from it stay (they no longer name it)."""
    if not actor_may(actor, may_manage_campaigns, systems=(GITOPS,)):
        raise NotPermitted("only security or a platform admin removes review templates")
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=actions.TEMPLATE_DELETED,
            target=template,
            before={"slug": template.slug, **_snapshot(template)},
        )
        template.delete()


def campaign_from_template(
    *, actor, template: CampaignTemplate, now: datetime | None = None
) -> Campaign:
    """Create the template's campaign, starting now with its deadline ``duration`` away, and
    start it (items snapshotted at once). A person (security, platform admin) or the reviews
    sweep (``REVIEWS``, by cadence)."""
    now = now or timezone.now()
    if not actor_may(actor, may_manage_campaigns, systems=(REVIEWS,)):
        raise NotPermitted("only security or a platform admin starts review campaigns")
    with transaction.atomic():
        template = CampaignTemplate.objects.select_for_update().get(pk=template.pk)
        campaign = Campaign.objects.create(
            name=f"{template.name} ({now:%Y-%m-%d})",
            scope=template.scope,
            scope_service=template.scope_service,
            scope_team=template.scope_team,
            scope_risk=template.scope_risk,
            reviewer_rule=template.reviewer_rule,
            starts_at=now,
            deadline=now + template.duration,
            deadline_action=template.deadline_action,
            created_by=None if is_system(actor) else actor,
            template=template,
        )
        audit_record(
            actor=actor,
            action=actions.CAMPAIGN_CREATED,
            target=campaign,
            after={
                "name": campaign.name,
                "template": template.slug,
                "starts_at": now.isoformat(),
                "deadline": campaign.deadline.isoformat(),
            },
        )
        template.last_started_at = now
        template.save(update_fields=["last_started_at"])
        campaign_start(actor=actor, campaign_id=campaign.pk, now=now)
    campaign.refresh_from_db()
    return campaign


def templates_due(*, now: datetime):
    """Templates with a cadence whose next campaign is due (never started, or the last one
    started a cadence ago or more)."""
    next_at = ExpressionWrapper(F("last_started_at") + F("cadence"), output_field=DateTimeField())
    return (
        CampaignTemplate.objects.filter(cadence__isnull=False)
        .alias(next_at=next_at)
        .filter(Q(last_started_at__isnull=True) | Q(next_at__lte=now))
    )


def templates_start_due(*, now: datetime | None = None) -> int:
    """Start a campaign from every template that is due (the reviews beat task)."""
    now = now or timezone.now()
    started = 0
    for template in templates_due(now=now).order_by("slug"):
        campaign_from_template(actor=REVIEWS, template=template, now=now)
        started += 1
    return started
