"""Every write of access reviews (A9). Revocations go through access.services.grant_revoke,
so services with a connector are deprovisioned through the provisioning outbox."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from access.models import Grant, Risk
from access.services import RevokeOrigin, grant_revoke
from accounts.models import User
from accounts.selectors import team_subtree_ids, user_manager_chain
from audit.services import audit_record
from portal.core.actors import REVIEWS, actor_may
from portal.core.csvsafe import safe_row
from portal.core.errors import Conflict, NotPermitted, ValidationError
from portal.core.queue import enqueue_on_commit
from portal.core.state import transition

from . import registry as actions
from .models import Campaign, ReviewItem
from .policies import may_decide_item, may_manage_campaigns
from .state import CAMPAIGN_TRANSITIONS, ITEM_TRANSITIONS


# --- Campaigns ------------------------------------------------------------------------
def campaign_create(
    *,
    actor,
    name: str,
    scope: str,
    reviewer_rule: str,
    starts_at: datetime,
    deadline: datetime,
    deadline_action: str,
    service=None,
    team=None,
    risk: str = "",
) -> Campaign:
    if not may_manage_campaigns(actor):
        raise NotPermitted("only security or a platform admin creates review campaigns")
    if not (name or "").strip():
        raise ValidationError("name the campaign", field="name")
    if scope not in Campaign.Scope.values:
        raise ValidationError("unknown scope", field="scope")
    if scope == Campaign.Scope.SERVICE and service is None:
        raise ValidationError("pick the service under review", field="scope_service")
    if scope == Campaign.Scope.TEAM and team is None:
        raise ValidationError("pick the team under review", field="scope_team")
    if scope == Campaign.Scope.RISK and risk not in Risk.values:
        raise ValidationError("pick the risk level under review", field="scope_risk")
    if reviewer_rule not in Campaign.Reviewer.values:
        raise ValidationError("unknown reviewer rule", field="reviewer_rule")
    if deadline_action not in Campaign.DeadlineAction.values:
        raise ValidationError("unknown deadline action", field="deadline_action")
    if deadline <= starts_at:
        raise ValidationError("the deadline must come after the start", field="deadline")
    with transaction.atomic():
        campaign = Campaign.objects.create(
            name=name.strip(),
            scope=scope,
            scope_service=service if scope == Campaign.Scope.SERVICE else None,
            scope_team=team if scope == Campaign.Scope.TEAM else None,
            scope_risk=risk if scope == Campaign.Scope.RISK else "",
            reviewer_rule=reviewer_rule,
            starts_at=starts_at,
            deadline=deadline,
            deadline_action=deadline_action,
            created_by=actor,
        )
        audit_record(
            actor=actor,
            action=actions.CAMPAIGN_CREATED,
            target=campaign,
            after={
                "name": campaign.name,
                "scope": scope,
                "service": service.slug if campaign.scope_service else None,
                "team": team.slug if campaign.scope_team else None,
                "risk": campaign.scope_risk,
                "reviewer_rule": reviewer_rule,
                "starts_at": starts_at.isoformat(),
                "deadline": deadline.isoformat(),
                "deadline_action": deadline_action,
            },
        )
    return campaign


def _grants_in_scope(campaign: Campaign):
    qs = Grant.objects.filter(status=Grant.Status.ACTIVE).select_related(
        "principal__manager", "entitlement__service"
    )
    if campaign.scope == Campaign.Scope.SERVICE:
        qs = qs.filter(entitlement__service_id=campaign.scope_service_id)
    elif campaign.scope == Campaign.Scope.TEAM:
        qs = qs.filter(principal__team_id__in=team_subtree_ids(team=campaign.scope_team))
    else:
        qs = qs.filter(entitlement__risk=campaign.scope_risk)
    return qs.order_by("pk")


def _first_manager(principal: User, *, above: User | None = None) -> User | None:
    """The nearest active manager of ``principal`` (or of ``above``) who is not the principal."""
    start = above or principal
    for manager in user_manager_chain(user=start):
        if manager.pk != principal.pk and manager.is_active:
            return manager
    return None


def _is_member(user: User, team_id: int) -> bool:
    return user.team_id == team_id or user.memberships.filter(team_id=team_id).exists()


def _assignment(campaign: Campaign, grant: Grant) -> dict:
    """Who reviews ``grant``: never its holder; falls to the next manager up, then security."""
    principal = grant.principal
    if campaign.reviewer_rule == Campaign.Reviewer.OWNER:
        owner_team_id = grant.entitlement.service.owner_team_id
        if not _is_member(principal, owner_team_id):
            return {"reviewer_team_id": owner_team_id}
    manager = _first_manager(principal)
    if manager is not None:
        return {"reviewer": manager}
    return {"to_security": True}


def campaign_start(*, actor, campaign_id: int, now: datetime | None = None) -> Campaign:
    """Draft → active: snapshot one item per active grant in scope."""
    now = now or timezone.now()
    if not actor_may(actor, may_manage_campaigns, systems=(REVIEWS,)):
        raise NotPermitted("only security or a platform admin starts review campaigns")
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
        if campaign.status != Campaign.Status.DRAFT:
            raise Conflict(f"campaign #{campaign.pk} is already {campaign.status}")
        items = [
            ReviewItem(
                campaign=campaign,
                grant=grant,
                principal=grant.principal,
                entitlement=grant.entitlement,
                held_since=grant.starts_at,
                last_used_at=grant.last_used_at,
                updated_at=now,
                **_assignment(campaign, grant),
            )
            for grant in _grants_in_scope(campaign)
        ]
        ReviewItem.objects.bulk_create(items)
        transition(
            campaign,
            table=CAMPAIGN_TRANSITIONS,
            action="start",
            actor=actor,
            audit_action=actions.CAMPAIGN_START,
            extra_fields={"started_at": now},
            after_extra={"items": len(items)},
        )
    return campaign


# --- Decisions ------------------------------------------------------------------------
def _revoke_grant(item: ReviewItem, *, reason: str) -> None:
    """Revoke through the access app (and its outbox) unless the grant already ended.

    The campaign revokes (the reviewer's decision is audited on the item, by the reviewer), so
    the reviewer needs no revoke permission on the grant itself."""
    if item.grant.status not in Grant.HELD_STATUSES:
        return
    grant_revoke(
        actor=REVIEWS, grant_id=item.grant_id, reason=reason[:300], origin=RevokeOrigin.REVIEW
    )


def _decide(*, actor, item_id: int, decision: str, reason: str, now: datetime) -> ReviewItem:
    item = (
        ReviewItem.objects.select_for_update(of=("self",))
        .select_related("campaign", "grant", "entitlement__service", "principal")
        .get(pk=item_id)
    )
    if actor.pk == item.principal_id:
        raise NotPermitted("nobody reviews their own access")
    if not may_decide_item(actor, item):
        raise NotPermitted("this review item is not yours to answer")
    if item.status != ReviewItem.Status.PENDING:
        raise Conflict(f"review item #{item.pk} was already answered ({item.status})")
    transition(
        item,
        table=ITEM_TRANSITIONS,
        action=decision,
        actor=actor,
        audit_action=actions.ITEM_KEEP if decision == "keep" else actions.ITEM_REVOKE,
        reason=reason,
        extra_fields={"decided_by": actor, "decided_at": now, "reason": reason[:300]},
        after_extra={"grant": item.grant_id, "campaign": item.campaign_id},
    )
    if decision == "revoke":
        _revoke_grant(
            item,
            reason=f"access review #{item.campaign_id} by {actor.email}: {reason}",
        )
    return item


def review_item_decide(
    *, actor, item_id: int, decision: str, reason: str = "", now: datetime | None = None
) -> ReviewItem:
    """Keep or revoke one grant under review."""
    return review_items_decide(
        actor=actor, item_ids=[item_id], decision=decision, reason=reason, now=now
    )[0]


def review_items_decide(
    *, actor, item_ids: list[int], decision: str, reason: str = "", now: datetime | None = None
) -> list[ReviewItem]:
    """Keep or revoke several items at once: all of them, or (on any refusal) none."""
    if decision not in ("keep", "revoke"):
        raise ValidationError("decide keep or revoke", field="decision")
    reason = (reason or "").strip()
    if decision == "revoke" and not reason:
        raise ValidationError("say why the access is revoked", field="reason")
    if not item_ids:
        raise ValidationError("pick at least one item", field="items")
    now = now or timezone.now()
    with transaction.atomic():
        return [
            _decide(actor=actor, item_id=pk, decision=decision, reason=reason, now=now)
            for pk in sorted(set(item_ids))
        ]


# --- The sweep: start, remind, escalate, deadline, close ------------------------------
def _notify(recipients: dict[str, list[str]], subject: str) -> None:
    """Mail after commit (no network inside the transaction), on the notify queue, muted with
    the other notifications."""
    from .tasks import review_mail_send  # reviews.tasks imports this module

    for email, lines in recipients.items():
        enqueue_on_commit(review_mail_send, email, subject, "\n".join(lines), kind="notify")


def _item_recipients(item: ReviewItem) -> list[str]:
    if item.escalated_to_id:
        return [item.escalated_to.email]
    if item.reviewer_id:
        return [item.reviewer.email]
    if item.reviewer_team_id:
        from accounts.selectors import team_members

        return [u.email for u in team_members(team=item.reviewer_team) if u.pk != item.principal_id]
    return []


def _escalation_target(item: ReviewItem) -> dict:
    """To the reviewer's manager (never the principal); team items and dead ends: security."""
    if item.reviewer_id:
        manager = _first_manager(item.principal, above=item.reviewer)
        if manager is not None:
            return {"escalated_to": manager}
    return {"to_security": True}


def _open_items(campaign: Campaign):
    return (
        ReviewItem.objects.select_for_update(of=("self",))
        .filter(campaign=campaign, status=ReviewItem.Status.PENDING)
        .select_related("principal", "entitlement__service", "reviewer", "escalated_to", "grant")
        .order_by("pk")
    )


def campaign_sweep(*, campaign_id: int, now: datetime) -> dict:
    counts = {"started": 0, "reminded": 0, "escalated": 0, "deadline": 0, "closed": 0}
    status, starts_at = Campaign.objects.values_list("status", "starts_at").get(pk=campaign_id)
    if status == Campaign.Status.DRAFT:
        if starts_at > now:
            return counts
        try:
            campaign_start(actor=REVIEWS, campaign_id=campaign_id, now=now)
        except Conflict:  # started meanwhile by someone else: carry on as active
            pass
        else:
            counts["started"] = 1
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
        if campaign.status != Campaign.Status.ACTIVE:
            return counts
        if now >= campaign.deadline:
            _deadline(campaign, now=now, counts=counts)
            return counts
        mail: dict[str, list[str]] = {}
        subject = f"Access review {campaign.name!r}: answer by {campaign.deadline:%Y-%m-%d %H:%M}"
        for item in _open_items(campaign):
            line = f"#{item.pk}: {item.principal.email} holds {item.entitlement.service.name} · {item.entitlement.name}"
            if now >= campaign.deadline - campaign.escalate_before and item.escalated_at is None:
                target = _escalation_target(item)
                before = {"reviewer": item.reviewer_label}
                for name, value in target.items():
                    setattr(item, name, value)
                item.escalated_at = now
                item.updated_at = now
                item.save(update_fields=[*target, "escalated_at", "updated_at"])
                audit_record(
                    actor=REVIEWS,
                    action=actions.ITEM_ESCALATED,
                    target=item,
                    before=before,
                    after={
                        "escalated_to": item.escalated_to.email
                        if item.escalated_to_id
                        else "security"
                    },
                )
                counts["escalated"] += 1
                for email in _item_recipients(item):
                    mail.setdefault(email, []).append(f"{line} (escalated to you)")
            elif now >= campaign.deadline - campaign.remind_before and item.reminded_at is None:
                item.reminded_at = now
                item.updated_at = now
                item.save(update_fields=["reminded_at", "updated_at"])
                recipients = _item_recipients(item)
                audit_record(
                    actor=REVIEWS,
                    action=actions.ITEM_REMINDED,
                    target=item,
                    after={"reminded": recipients},
                )
                counts["reminded"] += 1
                for email in recipients:
                    mail.setdefault(email, []).append(line)
        _notify(mail, subject)
    return counts


def _deadline(campaign: Campaign, *, now: datetime, counts: dict) -> None:
    revoke = campaign.deadline_action == Campaign.DeadlineAction.REVOKE
    for item in _open_items(campaign):
        transition(
            item,
            table=ITEM_TRANSITIONS,
            action="deadline_revoke" if revoke else "deadline_escalate",
            actor=REVIEWS,
            audit_action=actions.ITEM_DEADLINE_REVOKE if revoke else actions.ITEM_DEADLINE_ESCALATE,
            reason="unanswered at the deadline",
            extra_fields={"decided_at": now, "reason": "unanswered at the deadline"},
        )
        if revoke:
            _revoke_grant(
                item,
                reason=f"access review #{campaign.pk}: unanswered at the deadline",
            )
        counts["deadline"] += 1
    # Items are final now: the report can be fingerprinted once and for all.
    digest = hashlib.sha256(campaign_report_csv(campaign=campaign)).hexdigest()
    transition(
        campaign,
        table=CAMPAIGN_TRANSITIONS,
        action="close",
        actor=REVIEWS,
        audit_action=actions.CAMPAIGN_CLOSE,
        extra_fields={"closed_at": now, "report_sha256": digest},
        after_extra={"report_sha256": digest},
    )
    counts["closed"] = 1


def reviews_sweep(*, now: datetime | None = None) -> dict:
    """Run every draft-due and active campaign once (the beat task calls this)."""
    now = now or timezone.now()
    total = {"started": 0, "reminded": 0, "escalated": 0, "deadline": 0, "closed": 0}
    ids = list(
        Campaign.objects.filter(status__in=[Campaign.Status.DRAFT, Campaign.Status.ACTIVE])
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for pk in ids:
        for key, value in campaign_sweep(campaign_id=pk, now=now).items():
            total[key] += value
    return total


# --- The report -----------------------------------------------------------------------
REPORT_COLUMNS = [
    "item",
    "principal",
    "service",
    "entitlement",
    "risk",
    "held_since",
    "last_used_at",
    "reviewer",
    "escalated_to",
    "decision",
    "decided_by",
    "decided_at",
    "reason",
    "grant",
]


def _iso(value) -> str:
    return value.isoformat() if value else ""


def campaign_report_csv(*, campaign: Campaign) -> bytes:
    """The decisions as CSV; deterministic, so its SHA-256 is stable once closed."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    items = campaign.items.select_related(
        "principal",
        "entitlement__service",
        "reviewer",
        "reviewer_team",
        "escalated_to",
        "decided_by",
    ).order_by("pk")
    for item in items:
        writer.writerow(
            safe_row(
                [
                    item.pk,
                    item.principal.email,
                    item.entitlement.service.slug,
                    item.entitlement.slug,
                    item.entitlement.risk,
                    _iso(item.held_since),
                    _iso(item.last_used_at),
                    item.reviewer_label,
                    item.escalated_to.email if item.escalated_to_id else "",
                    item.status,
                    item.decided_by.email
                    if item.decided_by_id
                    else ("system" if item.decided_at else ""),
                    _iso(item.decided_at),
                    item.reason,
                    item.grant_id,
                ]
            )
        )
    return out.getvalue().encode("utf-8")


def campaign_export(*, actor, campaign: Campaign) -> tuple[bytes, dict]:
    """The finished campaign's CSV and its manifest (SHA-256 of the CSV, counts)."""
    if not may_manage_campaigns(actor) and not _is_auditor(actor):
        raise NotPermitted("only security, auditors or admins export review reports")
    if campaign.status != Campaign.Status.CLOSED:
        raise Conflict("only a closed campaign exports its report")
    data = campaign_report_csv(campaign=campaign)
    digest = hashlib.sha256(data).hexdigest()
    if campaign.report_sha256 and digest != campaign.report_sha256:
        raise Conflict("the report no longer matches the fingerprint taken at closing")
    manifest = {
        "campaign": campaign.pk,
        "name": campaign.name,
        "closed_at": _iso(campaign.closed_at),
        "file": report_filename(campaign),
        "algorithm": "sha256",
        "sha256": digest,
        "bytes": len(data),
        "rows": data.count(b"\n") - 1,
    }
    return data, manifest


def report_filename(campaign: Campaign) -> str:
    return f"access-review-{campaign.pk}.csv"


def manifest_json(manifest: dict) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _is_auditor(user) -> bool:
    from accounts.models import PlatformRole
    from accounts.selectors import user_has_role

    return user_has_role(user=user, role=PlatformRole.AUDITOR)
