"""Pages: who may read, edit, scan, and see which violations and scores."""

from __future__ import annotations

import json

import plotly.graph_objects as go
import pytest

from audit.models import AuditEvent
from standards.models import PolicyVersion, ScanRun, Standard, Violation
from standards.services import standards_scan
from tests.access.factories import grant_directly, make_entitlement, make_service

from .support import apply, doc, standard

pytestmark = pytest.mark.django_db

END_DATE = standard("end-date", "end_date_required_above_risk", risk="medium")


@pytest.fixture
def scanned(org, admin, requester, other_team_user):
    """A search-owned service with a violating grant, and one owned by the other team."""
    search_svc = make_service(org["search"], slug="vault", tier=0)
    other_svc = make_service(org["other"], slug="wiki", tier=2)
    g1 = grant_directly(requester, make_entitlement(search_svc, "write", risk="high"))
    g2 = grant_directly(other_team_user, make_entitlement(other_svc, "edit", risk="high"))
    for g in (g1, g2):
        g.ends_at = None
        g.save()
    apply(admin, END_DATE)
    standards_scan()
    return {
        "search": Violation.objects.get(service=search_svc),
        "other": Violation.objects.get(service=other_svc),
    }


def login(client, user):
    client.force_login(user)
    return client


@pytest.mark.sqlite
@pytest.mark.parametrize(
    ("persona", "expected"),
    [("admin", 200), ("security", 200), ("auditor", 200), ("requester", 404), ("finance", 404)],
)
def test_standard_list_and_export_readers(client, request, org, admin, persona, expected):
    apply(admin, END_DATE)
    login(client, request.getfixturevalue(persona))
    assert client.get("/standards/").status_code == expected
    response = client.get("/standards/export.yaml")
    assert response.status_code == expected
    if expected == 200:
        assert b"id: end-date" in response.content
        assert client.get("/standards/versions/1/").status_code == 200


@pytest.mark.sqlite
@pytest.mark.parametrize(
    ("persona", "expected"),
    [("admin", 200), ("security", 403), ("auditor", 403), ("requester", 404)],
)
def test_edit_page_is_for_admins(client, request, org, persona, expected):
    login(client, request.getfixturevalue(persona))
    assert client.get("/standards/edit/").status_code == expected
    response = client.post("/standards/edit/", {"action": "apply", "yaml": END_DATE})
    assert response.status_code == (302 if persona == "admin" else expected)
    assert PolicyVersion.objects.count() == (1 if persona == "admin" else 0)


@pytest.mark.sqlite
def test_edit_preview_then_apply(client, org, admin, requester):
    login(client, admin)
    response = client.post("/standards/edit/", {"action": "preview", "yaml": END_DATE})
    assert response.status_code == 200
    body = response.content.decode()
    assert "added <code>end-date</code>" in body
    assert PolicyVersion.objects.count() == 0
    response = client.post(
        "/standards/edit/", {"action": "apply", "yaml": END_DATE, "base_version": ""}
    )
    assert response.status_code == 302
    assert Standard.objects.get().key == "end-date"
    # A second apply against the stale base is refused and changes nothing.
    changed = END_DATE.replace("risk: medium", "risk: high")
    response = client.post(
        "/standards/edit/", {"action": "apply", "yaml": changed, "base_version": ""}
    )
    assert response.status_code == 400
    assert "changed since your preview" in response.content.decode()
    assert PolicyVersion.objects.count() == 1


@pytest.mark.sqlite
def test_edit_shows_line_and_reason_and_changes_nothing(client, org, admin):
    login(client, admin)
    before = AuditEvent.objects.count()
    bad = doc(
        """
        - id: a
          title: A
          severity: low
          owner: platform
          check:
            kind: nope
        """
    )
    response = client.post("/standards/edit/", {"action": "apply", "yaml": bad})
    assert response.status_code == 400
    assert "<strong>line 6</strong>" in response.content.decode()
    assert "unknown kind &#x27;nope&#x27;" in response.content.decode()
    assert PolicyVersion.objects.count() == 0 and AuditEvent.objects.count() == before


def test_upload_file_preview(client, org, admin):
    from django.core.files.uploadedfile import SimpleUploadedFile

    login(client, admin)
    upload = SimpleUploadedFile("s.yaml", END_DATE.encode(), content_type="text/yaml")
    response = client.post("/standards/edit/", {"action": "preview", "file": upload})
    assert response.status_code == 200
    assert "1 added, 0 changed, 0 removed" in response.content.decode()


def test_violations_are_scoped_to_owners(
    client, scanned, requester, service_owner, other_team_user, security
):
    def visible(user):
        login(client, user)
        body = client.get("/standards/violations/").content.decode()
        return {key for key, v in scanned.items() if f'id="violation-{v.pk}"' in body}

    assert visible(service_owner) == {"search"}  # their team owns the service
    assert visible(other_team_user) == {"other"}
    assert visible(requester) == set()  # holds the grant, owns nothing
    assert visible(security) == {"search", "other"}


@pytest.mark.sqlite
def test_violation_detail_wrong_team_is_404(
    client, scanned, service_owner, other_team_user, auditor
):
    login(client, service_owner)
    assert client.get(f"/standards/violations/{scanned['search'].pk}/").status_code == 200
    assert client.get(f"/standards/violations/{scanned['other'].pk}/").status_code == 404
    login(client, other_team_user)
    assert client.get(f"/standards/violations/{scanned['search'].pk}/").status_code == 404
    login(client, auditor)
    assert client.get(f"/standards/violations/{scanned['other'].pk}/").status_code == 200


def test_violation_list_query_count_is_bounded(
    client, scanned, security, django_assert_max_num_queries
):
    login(client, security)
    with django_assert_max_num_queries(13):  # 12 + security's control-changes menu count
        assert client.get("/standards/violations/?status=all").status_code == 200


def test_compliance_pages_scoped_and_chart_valid(client, scanned, org, service_owner, admin):
    login(client, service_owner)
    response = client.get("/standards/compliance/")
    body = response.content.decode()
    assert response.status_code == 200
    assert 'href="/standards/compliance/teams/search/"' in body
    assert "/standards/compliance/teams/other/" not in body
    assert 'id="org-score"' not in body
    assert client.get("/standards/compliance/teams/other/").status_code == 404
    response = client.get("/standards/compliance/teams/search/")
    assert response.status_code == 200
    fig = response.context["figures"]["chart-team"]
    go.Figure(fig)  # a valid Plotly figure
    assert fig["data"][0]["y"] == [0.0]  # search: one grant, violating
    login(client, admin)
    response = client.get("/standards/compliance/")
    assert 'id="org-score"' in response.content.decode()
    assert json.loads(json.dumps(response.context["figures"]["chart-org"]))["data"][0]["y"] == [0.0]


def test_scan_now_needs_security_or_admin(client, org, admin, requester, security):
    apply(admin, END_DATE)
    login(client, requester)
    assert client.post("/standards/scan/").status_code == 403
    assert ScanRun.objects.count() == 0
    assert client.get("/standards/scan/").status_code == 405
    login(client, security)
    assert client.post("/standards/scan/").status_code == 302
    assert ScanRun.objects.get().status == ScanRun.Status.DONE


def test_nav_link(client, requester):
    login(client, requester)
    assert 'id="nav-standards"' in client.get("/standards/violations/").content.decode()
