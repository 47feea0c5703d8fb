"""Reads of approval recommendations (P5): the live model, scores, candidates, adoptions."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.core.cache import cache
from django.db.models import Count, Q

from access.models import RISK_ORDER, AccessRequest, Entitlement
from accounts.models import User
from portal.core.errors import NotPermitted
from portal.core.memo import memoized

from . import policies
from .features import RowBuilder, reasons
from .model import ApprovalModel
from .models import AutoApproveAdoption, RecommendationModel

log = logging.getLogger(__name__)

MIN_DECISIONS = 50
MIN_PER_OUTCOME = 5
SCORE_CACHE_SECONDS = 3600

_loaded: dict[tuple[int, str], ApprovalModel] = {}


@dataclass
class Score:
    probability: float
    reasons: list[dict]
    model_version: int
    threshold: float | None

    @property
    def auto_approvable(self) -> bool:
        return self.threshold is not None and self.probability >= self.threshold


def training_queryset():
    """Human decisions: approved or denied by people (auto-approvals would teach the model
    its own rules back)."""
    return AccessRequest.objects.filter(
        status__in=[AccessRequest.Status.APPROVED, AccessRequest.Status.DENIED],
        auto_approval_reason="",
    )


def training_data_status() -> dict:
    counts = training_queryset().aggregate(
        total=Count("pk"), approved=Count("pk", filter=Q(status=AccessRequest.Status.APPROVED))
    )
    total, approved = counts["total"], counts["approved"]
    denied = total - approved
    problems = []
    if total < MIN_DECISIONS:
        problems.append(f"{total} decided requests (at least {MIN_DECISIONS} are needed)")
    if min(approved, denied) < MIN_PER_OUTCOME:
        problems.append(
            f"{approved} approved and {denied} denied (each outcome needs at least {MIN_PER_OUTCOME})"
        )
    return {
        "total": total,
        "approved": approved,
        "denied": denied,
        "enough": not problems,
        "problems": problems,
    }


def live_model() -> RecommendationModel | None:
    """The newest model with a blob; the blob itself loads only when a process first needs it."""
    return RecommendationModel.objects.defer("blob").exclude(blob=b"").order_by("-version").first()


def model_history(*, viewer, limit: int = 20) -> list[RecommendationModel]:
    if not policies.may_see_model_status(viewer):
        raise NotPermitted("only admins, security and auditors see the recommendation model")
    return list(RecommendationModel.objects.defer("blob").order_by("-version")[:limit])


def _identity(row: RecommendationModel) -> tuple[int, str]:
    # Row id and training time: a recreated database (demo re-seed, tests) may reuse an id.
    return row.pk, row.trained_at.isoformat()


def loaded(row: RecommendationModel) -> ApprovalModel:
    """The unpickled model, kept per process (a model row never changes once written)."""
    key = _identity(row)
    model = _loaded.get(key)
    if model is None:
        model = ApprovalModel.loads(bytes(row.blob))
        _loaded.clear()
        _loaded[key] = model
    return model


def score(
    *, principal: User, entitlement: Entitlement, row: RecommendationModel | None = None
) -> Score | None:
    """How likely a request of ``principal`` for ``entitlement`` is to be approved, and why."""
    row = row or live_model()
    if row is None:
        return None
    builder = RowBuilder(principal_ids=[principal.pk], entitlement_ids=[entitlement.pk])
    features = builder.row(principal_id=principal.pk, entitlement_id=entitlement.pk)
    model = loaded(row)
    probability = float(model.predict_proba([features])[0])
    return Score(
        probability=probability,
        reasons=reasons(model.explain(features, top=3), features),
        model_version=row.version,
        threshold=row.threshold,
    )


def request_score(*, request: AccessRequest) -> Score | None:
    """A pending request's score, cached per (model row, request)."""
    row = live_model()
    if row is None:
        return None
    model_id, trained_at = _identity(row)
    key = f"recommend:score:{model_id}:{trained_at}:r{request.pk}"
    cached = cache.get(key)
    if cached is not None:
        return Score(**cached)
    result = score(principal=request.principal, entitlement=request.entitlement, row=row)
    cache.set(key, result.__dict__, SCORE_CACHE_SECONDS)
    return result


def pending_scores(*, row: RecommendationModel) -> list[tuple[AccessRequest, float]]:
    """Every pending request with its probability, scored in one batch."""
    pending = list(
        AccessRequest.objects.filter(status=AccessRequest.Status.PENDING)
        .select_related("principal", "entitlement__service", "entitlement__policy")
        .order_by("pk")
    )
    if not pending:
        return []
    builder = RowBuilder(
        principal_ids={r.principal_id for r in pending},
        entitlement_ids={r.entitlement_id for r in pending},
    )
    rows = [
        builder.row(principal_id=r.principal_id, entitlement_id=r.entitlement_id) for r in pending
    ]
    probabilities = loaded(row).predict_proba(rows)
    return [(r, float(p)) for r, p in zip(pending, probabilities, strict=True)]


def auto_approval_candidates(*, viewer) -> dict:
    """Pending requests the live model would auto-approve at its stated precision, and what an
    adoption by the request's policy would do with them."""
    if not policies.may_see_candidates(viewer):
        raise NotPermitted("only platform admins see auto-approval candidates")
    row = live_model()
    if row is None:
        return {"model": None, "pending": 0, "candidates": []}
    from access.workflow import policy_for

    scored = pending_scores(row=row)
    adoptions = {a.policy_id: a for a in AutoApproveAdoption.objects.select_related("policy").all()}
    candidates = []
    if row.threshold is not None:
        for req, p in sorted(scored, key=lambda item: -item[1]):
            if p < row.threshold:
                continue
            policy = policy_for(req.entitlement)
            adoption = adoptions.get(policy.pk) if policy is not None else None
            candidates.append(
                {
                    "req": req,
                    "probability": p,
                    "policy": policy,
                    "adoption": adoption,
                    "adopted": adoption is not None
                    and adoption.enabled
                    and p >= float(adoption.min_probability)
                    and RISK_ORDER[req.entitlement.risk] <= RISK_ORDER[adoption.max_risk],
                }
            )
    return {"model": row, "pending": len(scored), "candidates": candidates}


def adoptions_for(*, viewer) -> list[AutoApproveAdoption]:
    if not policies.may_manage_adoptions(viewer):
        raise NotPermitted("only platform admins manage adoptions")
    return list(AutoApproveAdoption.objects.select_related("policy", "adopted_by"))


def adoption_for_policy(policy_id: int) -> AutoApproveAdoption | None:
    return memoized(
        ("recommend.adoption", policy_id),
        lambda: (
            AutoApproveAdoption.objects.filter(policy_id=policy_id, enabled=True)
            .select_related("policy")
            .first()
        ),
    )
