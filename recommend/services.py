"""Every write of approval recommendations (P5): training a model, adopting it in a policy."""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from access.models import ApprovalPolicy, Risk
from audit.services import audit_record
from portal.core.actors import RECOMMEND, Actor, actor_may
from portal.core.errors import NotPermitted, ValidationError

from . import registry as actions
from .features import SPEC, RowBuilder
from .model import ApprovalModel, cross_validate
from .models import AutoApproveAdoption, RecommendationModel
from .policies import may_manage_adoptions, may_train_model
from .selectors import training_data_status, training_queryset

log = logging.getLogger(__name__)

TARGET_PRECISION = 0.99
CV_FOLDS = 5


def recommendation_model_train(*, actor: Actor = RECOMMEND) -> RecommendationModel | None:
    """Train on every human decision, cross-validate, store the model. None when the data is
    too thin (the status page says why). ``actor`` is a user (retrain button) or the beat."""
    if not actor_may(actor, may_train_model, systems=(RECOMMEND,)):
        raise NotPermitted("only platform admins retrain the recommendation model")
    status = training_data_status()
    if not status["enough"]:
        log.info("recommend: not training: %s", "; ".join(status["problems"]))
        return None
    decided = list(
        training_queryset()
        .order_by("pk")
        .values_list("principal_id", "entitlement_id", "created_at", "status")
    )
    builder = RowBuilder(
        principal_ids={d[0] for d in decided}, entitlement_ids={d[1] for d in decided}
    )
    rows = [builder.row(principal_id=p, entitlement_id=e, at=at) for p, e, at, _ in decided]
    y = [1 if s == "approved" else 0 for *_, s in decided]
    evaluation = cross_validate(rows, y, SPEC, folds=CV_FOLDS, target_precision=TARGET_PRECISION)
    blob = ApprovalModel(SPEC).fit(rows, y).dumps()
    with transaction.atomic():
        version = (RecommendationModel.objects.aggregate(v=Max("version"))["v"] or 0) + 1
        row = RecommendationModel.objects.create(
            version=version,
            trained_at=timezone.now(),
            training_size=len(rows),
            approved=sum(y),
            cv_folds=evaluation.folds,
            cv_auc=evaluation.auc,
            target_precision=TARGET_PRECISION,
            threshold=evaluation.threshold.threshold,
            auto_share=evaluation.threshold.share,
            spec=SPEC.to_dict(),
            blob=blob,
        )
        RecommendationModel.objects.filter(
            version__lte=version - RecommendationModel.KEEP_BLOBS
        ).exclude(blob=b"").update(blob=b"")
        audit_record(
            actor=actor,
            action=actions.MODEL_TRAINED,
            target=row,
            after={
                "version": version,
                "training_size": row.training_size,
                "approved": row.approved,
                "cv_auc": round(row.cv_auc, 4),
                "threshold": row.threshold,
                "auto_share": round(row.auto_share, 4),
            },
        )
    return row


def _probability(raw) -> Decimal:
    try:
        value = Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        raise ValidationError(
            "min probability must be a number such as 0.99", field="min_probability"
        ) from None
    if not value.is_finite() or not (Decimal("0.5") <= value <= Decimal("1")):
        raise ValidationError("min probability must be between 0.5 and 1", field="min_probability")
    return value.quantize(Decimal("0.0001"))


def _state(adoption: AutoApproveAdoption) -> dict:
    return {
        "policy": adoption.policy.slug,
        "min_probability": str(adoption.min_probability),
        "max_risk": adoption.max_risk,
        "enabled": adoption.enabled,
    }


def adoption_save(
    *, actor, policy: ApprovalPolicy, min_probability, max_risk: str, enabled: bool
) -> AutoApproveAdoption:
    """Create or change a policy's adoption of recommendation-based auto-approval."""
    if not may_manage_adoptions(actor):
        raise NotPermitted("only platform admins let a policy auto-approve on recommendations")
    probability = _probability(min_probability)
    if max_risk not in Risk.values:
        raise ValidationError(f"max risk must be one of {', '.join(Risk.values)}", field="max_risk")
    with transaction.atomic():
        adoption = (
            AutoApproveAdoption.objects.select_for_update()
            .select_related("policy")
            .filter(policy=policy)
            .first()
        )
        if adoption is None:
            adoption = AutoApproveAdoption.objects.create(
                policy=policy,
                min_probability=probability,
                max_risk=max_risk,
                enabled=bool(enabled),
                adopted_by=actor,
            )
            audit_record(
                actor=actor,
                action=actions.ADOPTION_CREATED,
                target=adoption,
                after=_state(adoption),
            )
            return adoption
        before = _state(adoption)
        adoption.min_probability = probability
        adoption.max_risk = max_risk
        adoption.enabled = bool(enabled)
        if _state(adoption) == before:
            return adoption
        adoption.adopted_by = actor
        adoption.updated_at = timezone.now()
        adoption.save()
        audit_record(
            actor=actor,
            action=actions.ADOPTION_CHANGED,
            target=adoption,
            before=before,
            after=_state(adoption),
        )
    return adoption
