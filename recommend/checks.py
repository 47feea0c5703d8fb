"""The request-time check (``access.workflow.REQUEST_CHECKS``): a policy that adopted the
model offers auto-approval when the request scores at or above its threshold."""

from __future__ import annotations

import logging

from access.models import RISK_ORDER

log = logging.getLogger(__name__)


def recommendation_offer(*, preview, requester, principal, entitlement, duration_days) -> None:
    if preview.refusals or preview.no_auto_approval:
        return
    from access.workflow import policy_for

    from .selectors import adoption_for_policy, live_model, score

    policy = policy_for(entitlement)
    if policy is None:
        return
    adoption = adoption_for_policy(policy.pk)
    if adoption is None or RISK_ORDER[entitlement.risk] > RISK_ORDER[adoption.max_risk]:
        return
    row = live_model()
    if row is None:
        return
    try:
        result = score(principal=principal, entitlement=entitlement, row=row)
    except Exception:  # a broken model never blocks a request: it just offers nothing
        log.exception("recommend: scoring failed; no auto-approval offer")
        return
    if result is None or result.probability < float(adoption.min_probability):
        return
    preview.auto_approval_offers.append(
        f"recommendation p={result.probability:.3f} ≥ {adoption.min_probability} "
        f"adopted by policy {policy.slug} (model v{row.version})"
    )
