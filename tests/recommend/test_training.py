"""Training on Tollgate decisions: the no-model state, the model row, the beat task."""

from __future__ import annotations

import pytest

from access.models import AccessRequest
from audit.models import AuditEvent
from portal.core.errors import NotPermitted
from recommend import selectors, services, tasks
from recommend.features import RowBuilder
from recommend.models import RecommendationModel
from tests.access.factories import grant_directly
from tests.recommend.conftest import decided

pytestmark = pytest.mark.django_db


@pytest.mark.sqlite
def test_too_little_data_means_no_model(payments_people, other_people, read):
    for person in payments_people:
        decided(person, read, "approved")
    decided(other_people[0], read, "denied")
    status = selectors.training_data_status()
    assert (status["total"], status["approved"], status["denied"], status["enough"]) == (
        7,
        6,
        1,
        False,
    )
    assert status["problems"] == [
        "7 decided requests (at least 50 are needed)",
        "6 approved and 1 denied (each outcome needs at least 5)",
    ]
    audit_before = AuditEvent.objects.count()

    assert services.recommendation_model_train() is None

    assert RecommendationModel.objects.count() == 0
    assert AuditEvent.objects.count() == audit_before
    assert selectors.live_model() is None


def test_one_outcome_only_means_no_model(payments_people, read):
    for n in range(60):
        decided(payments_people[n % 6], read, "approved")
    assert services.recommendation_model_train() is None
    assert RecommendationModel.objects.count() == 0


@pytest.mark.sqlite
def test_training_stores_figures_blob_and_one_audit_event(trained, history):
    row = trained
    assert (row.version, row.training_size, row.approved, row.cv_folds) == (1, 60, 36, 5)
    assert row.cv_auc > 0.95  # the team decides the outcome
    assert row.threshold is not None and 0 < row.auto_share <= 36 / 60
    assert row.spec["numeric"] == ["team_share", "manager_share"]
    assert len(bytes(row.blob)) > 100
    event = AuditEvent.objects.get(action="recommend.model_trained")
    assert (event.actor_label, event.target_id) == ("system:recommend", str(row.pk))
    assert event.after["training_size"] == 60
    assert selectors.live_model() == row


def test_retraining_adds_a_version_and_drops_old_blobs(trained):
    for _ in range(RecommendationModel.KEEP_BLOBS):
        services.recommendation_model_train()
    versions = list(RecommendationModel.objects.order_by("version").values_list("version", "blob"))
    assert [v for v, _ in versions] == [1, 2, 3, 4]
    assert bytes(versions[0][1]) == b""  # v1 is history only now
    assert all(bytes(b) for _, b in versions[1:])
    assert selectors.live_model().version == 4
    assert AuditEvent.objects.filter(action="recommend.model_trained").count() == 4


def test_beat_task_trains(history):
    tasks.retrain_model.delay()
    assert RecommendationModel.objects.get().training_size == 60


def test_only_admins_retrain_by_hand(history, requester, admin):
    with pytest.raises(NotPermitted):
        services.recommendation_model_train(actor=requester)
    assert RecommendationModel.objects.count() == 0
    row = services.recommendation_model_train(actor=admin)
    assert AuditEvent.objects.get(action="recommend.model_trained").actor_id == admin.pk
    assert row.version == 1


def test_peer_signals_are_taken_at_decision_time(payments_people, read):
    """Teammates' grants count only while they were held when the request was made."""
    from datetime import timedelta

    from django.utils import timezone

    me, *mates = payments_people
    grant_directly(mates[0], read)  # held now (started now)
    old = grant_directly(mates[1], read)
    old.starts_at = timezone.now() - timedelta(days=100)
    old.save(update_fields=["starts_at"])
    builder = RowBuilder(principal_ids=[me.pk], entitlement_ids=[read.pk])
    now = builder.row(principal_id=me.pk, entitlement_id=read.pk)
    then = builder.row(
        principal_id=me.pk, entitlement_id=read.pk, at=timezone.now() - timedelta(days=50)
    )
    assert (now["team_holders"], now["team_size"]) == (2, 6)  # the manager is on the team too
    assert (then["team_holders"], then["team_size"]) == (1, 6)
    assert now["team"] == "payments" and now["entitlement"] == "billing:read"
    assert now["own_service"] == "no" and now["risk"] == "low"
    assert now["manager"] == "manager@example.com" and now["manager_holders"] == 2


def test_auto_approved_requests_are_not_training_data(history):
    assert selectors.training_queryset().count() == 60
    assert AccessRequest.objects.filter(status="approved").count() == 37
