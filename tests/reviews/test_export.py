"""The finished campaign exports as CSV with a SHA-256 manifest."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import timedelta

import pytest
from django.urls import reverse

from portal.core.errors import Conflict
from reviews import services
from tests.conftest import PASSWORD
from tests.reviews.support import T0, item_for, make_campaign

pytestmark = pytest.mark.django_db


@pytest.fixture
def closed(security, manager, requester, held, billing, django_capture_on_commit_callbacks):
    campaign = make_campaign(security, service=billing)
    services.campaign_start(actor=security, campaign_id=campaign.pk, now=T0)
    services.review_item_decide(
        actor=manager, item_id=item_for(campaign, requester).pk, decision="keep", now=T0
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.reviews_sweep(now=T0 + timedelta(days=14))
    campaign.refresh_from_db()
    return campaign


def test_export_csv_and_manifest_checksum(closed, auditor, client):
    assert client.login(email=auditor.email, password=PASSWORD)
    data = client.get(reverse("reviews:campaign-report", args=[closed.pk]))
    assert data.status_code == 200
    assert data["Content-Type"] == "text/csv; charset=utf-8"
    manifest = json.loads(
        client.get(reverse("reviews:campaign-manifest", args=[closed.pk])).content
    )
    digest = hashlib.sha256(data.content).hexdigest()
    assert manifest["sha256"] == digest == closed.report_sha256
    assert (manifest["rows"], manifest["bytes"]) == (4, len(data.content))
    rows = list(csv.DictReader(io.StringIO(data.content.decode())))
    by = {r["principal"]: r for r in rows}
    assert (by["requester@example.com"]["decision"], by["requester@example.com"]["decided_by"]) == (
        "kept",
        "manager@example.com",
    )
    assert (by["peer@example.com"]["decision"], by["peer@example.com"]["decided_by"]) == (
        "revoked",
        "system",
    )


def test_a_changed_report_fails_its_fingerprint(closed, security):
    closed.items.filter(status="kept").update(reason="tampered")
    with pytest.raises(Conflict, match="fingerprint"):
        services.campaign_export(actor=security, campaign=closed)


def test_an_open_campaign_does_not_export(security, held, billing):
    campaign = make_campaign(security, service=billing)
    with pytest.raises(Conflict):
        services.campaign_export(actor=security, campaign=campaign)


def test_reviewers_and_strangers_may_not_export(closed, manager, other_team_user, client):
    url = reverse("reviews:campaign-report", args=[closed.pk])
    assert client.login(email=manager.email, password=PASSWORD)
    assert client.get(url).status_code == 403
    assert client.get(reverse("reviews:campaign-detail", args=[closed.pk])).status_code == 200
    client.logout()
    assert client.login(email=other_team_user.email, password=PASSWORD)
    assert client.get(url).status_code == 404


def test_report_cells_that_would_run_as_formulas_are_text(closed):
    closed.items.filter(status="kept").update(reason='=HYPERLINK("http://evil.example","x")')

    text = services.campaign_report_csv(campaign=closed).decode()

    rows = list(csv.DictReader(io.StringIO(text)))
    reasons = [row["reason"] for row in rows if row["decision"] == "kept"]
    assert reasons == ['\'=HYPERLINK("http://evil.example","x")']
