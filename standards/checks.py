"""Request-time evaluation of the active standards (registered in access.workflow.REQUEST_CHECKS).

What each kind does to a request in its scope (docs/STANDARDS.md):

* requires_stage — adds the named approval stage when the policy lacks it, and vetoes
  auto-approval (someone of that stage must approve).
* max_duration_days — refuses a duration above the limit, naming the limit and the standard.
* no_standing_access — refuses a duration above ``max_days`` (requests always end, so
  without ``max_days`` it has nothing to refuse at request time).
* end_date_required_above_risk — nothing to refuse: every request has an end date. The scan
  finds grants that arrived without one.
* min_service_owners, entitlement_has_owner_and_cost — warn (the gap is the owners' to fix,
  not the requester's).
* sod_pairs — refuses when the principal holds (or has a pending request for) the other
  entitlement of a pair.
"""

from __future__ import annotations

from access.models import AccessRequest, Grant
from access.workflow import security_stage
from portal.core.memo import memoized

from .document import Rule
from .engine import entitlement_ids, owner_lead_q, scope_matches
from .models import Standard

STAGE_NAMES = {
    "security": "Security",
    "service_owner": "Service owner",
    "manager": "Manager",
}


def _label(rule: Rule) -> str:
    return f"standard {rule.key} ({rule.title})"


def _stage(rule: Rule) -> dict:
    if rule.params["stage"] == "security":
        stage = security_stage()
    else:
        stage = {
            "kind": rule.params["stage"],
            "required": 1,
            "group_id": None,
            "user_ids": [],
        }
    stage["name"] = f"{STAGE_NAMES[rule.params['stage']]} (standard {rule.key})"
    stage["source"] = f"standard:{rule.key}"
    return stage


def standards_request_check(
    *, preview, requester, principal, entitlement, duration_days=None
) -> None:
    rules = memoized(
        ("standards.active_rules",),
        lambda: [Rule.from_model(s) for s in Standard.objects.filter(active=True)],
    )
    for rule in rules:
        if not scope_matches(rule.scope, entitlement=entitlement, principal=principal):
            continue
        _apply(
            rule, preview=preview, principal=principal, entitlement=entitlement, days=duration_days
        )


def _apply(rule: Rule, *, preview, principal, entitlement, days) -> None:
    kind, params = rule.kind, rule.params
    if kind == "requires_stage":
        if not any(s.get("kind") == params["stage"] for s in preview.stages):
            preview.stages.append(_stage(rule))
        preview.no_auto_approval.append(
            f"{_label(rule)}: needs a {params['stage'].replace('_', ' ')} approval"
        )
    elif kind in ("max_duration_days", "no_standing_access"):
        limit = params.get("days") or params.get("max_days")
        if limit is None:
            return
        if days is None:
            preview.warnings.append(f"{_label(rule)}: at most {limit} days")
        elif days > limit:
            preview.refusals.append(
                f"{_label(rule)}: at most {limit} days for {entitlement}, {days} requested"
            )
    elif kind == "min_service_owners":
        service = entitlement.service
        owners = service.owner_team.memberships.filter(owner_lead_q()).count()
        if owners < params["min"]:
            preview.warnings.append(
                f"{_label(rule)}: {service.slug} has {owners} owner(s), the standard asks for {params['min']}"
            )
    elif kind == "entitlement_has_owner_and_cost":
        gaps = []
        if not entitlement.service.owner_team.memberships.filter(owner_lead_q()).exists():
            gaps.append("no owner")
        if entitlement.seat_cost_monthly <= 0:
            gaps.append("no seat cost")
        if gaps:
            preview.warnings.append(f"{_label(rule)}: {entitlement} has " + " and ".join(gaps))
    elif kind == "sod_pairs":
        ref = f"{entitlement.service.slug}/{entitlement.slug}"
        partners = [b if a == ref else a for a, b in params["pairs"] if ref in (a, b)]
        if not partners:
            return
        ids = entitlement_ids(partners)
        held = set(
            Grant.objects.filter(
                principal=principal,
                status__in=Grant.HELD_STATUSES,
                entitlement_id__in=ids.values(),
            ).values_list("entitlement_id", flat=True)
        ) | set(
            AccessRequest.objects.filter(
                principal=principal,
                status=AccessRequest.Status.PENDING,
                entitlement_id__in=ids.values(),
            ).values_list("entitlement_id", flat=True)
        )
        clash = sorted(name for name, pk in ids.items() if pk in held)
        if clash:
            preview.refusals.append(
                f"{_label(rule)}: {principal.email} holds {', '.join(clash)}, which may not be held together with {ref}"
            )
    # end_date_required_above_risk: every request has an end date; nothing to check here.
