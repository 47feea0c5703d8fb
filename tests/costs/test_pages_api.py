from __future__ import annotations

import os
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from costs import services
from costs.models import AttributionRule, CostLine, ImportRun
from portal.core.actors import COSTS

from .conftest import SAMPLE, do_import

pytestmark = pytest.mark.django_db

PAGES = [
    "costs:coverage",
    "costs:sources",
    "costs:rule-list",
    "costs:rule-create",
    "costs:unallocated",
]


@pytest.fixture
def loaded(org):
    for slug, value in (("payments", "prod"), ("search", "dev")):
        services.rule_save(
            actor=COSTS,
            rule=None,
            data={
                "name": slug,
                "tag_key": "environment",
                "tag_value": value,
                "method": "direct",
                "team": slug,
            },
        )
    run = do_import(SAMPLE)
    assert run.status == "succeeded"
    return run


@pytest.mark.sqlite
@pytest.mark.parametrize("name", PAGES)
def test_pages_answer_admin_and_finance_and_hide_from_team_members(
    client, name, loaded, admin, finance, requester
):
    url = reverse(name)
    client.force_login(requester)
    assert client.get(url).status_code == 404
    for user in (admin, finance):
        client.force_login(user)
        assert client.get(url).status_code == 200


@pytest.mark.parametrize("name", PAGES)
def test_pages_have_bounded_query_counts(
    client, name, loaded, admin, django_assert_max_num_queries
):
    client.force_login(admin)
    with django_assert_max_num_queries(15):  # 14 + the admin menu's control-changes count
        assert client.get(reverse(name)).status_code == 200


def test_auditor_sees_but_cannot_edit(client, loaded, auditor):
    client.force_login(auditor)
    assert client.get(reverse("costs:rule-list")).status_code == 200
    assert client.get(reverse("costs:rule-create")).status_code == 404
    before = AttributionRule.objects.count()
    response = client.post(
        reverse("costs:rule-create"),
        {"name": "x", "method": "direct", "team": "payments", "resource_pattern_kind": "glob"},
    )
    assert response.status_code == 404
    assert AttributionRule.objects.count() == before


def test_import_detail_shows_errors_and_progress(client, loaded, admin, tmp_path):
    from .test_ingest import _mutate

    bad = do_import(_mutate(tmp_path, "BilledCost", 3, "x"))
    client.force_login(admin)
    body = client.get(reverse("costs:import-detail", args=[bad.pk])).content.decode()
    assert "1 error" in body and "BilledCost" in body and "<td>4</td>" in body
    partial = client.get(reverse("costs:import-progress", args=[loaded.pk]), HTTP_HX_REQUEST="true")
    assert partial.status_code == 200
    assert partial["HX-Refresh"] == "true"


def test_upload_page_imports_the_file(client, org, admin, django_capture_on_commit_callbacks):
    client.force_login(admin)
    upload = SimpleUploadedFile("focus.csv", SAMPLE.read_bytes(), content_type="text/csv")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("costs:sources"), {"source": "uploaded", "file": upload})
    run = ImportRun.objects.get(source__name="uploaded")
    assert response.status_code == 302
    assert response["Location"] == reverse("costs:import-detail", args=[run.pk])
    run.refresh_from_db()
    assert (run.status, run.origin, run.rows_loaded) == ("succeeded", "upload", 1000)


def test_mutations_need_csrf(org, admin):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(admin)
    response = csrf_client.post(
        reverse("costs:rule-create"), {"name": "x", "method": "direct", "team": "payments"}
    )
    assert response.status_code == 403
    assert AttributionRule.objects.count() == 0
    assert csrf_client.get(reverse("costs:reattribute")).status_code == 405


def test_rule_editor_preview_and_save(client, loaded, admin):
    client.force_login(admin)
    form = {
        "name": "lambda",
        "service_name": "AWS Lambda",
        "method": "direct",
        "team": "platform",
        "enabled": "on",
        "resource_pattern_kind": "glob",
        "position": "1",
    }
    preview = client.post(reverse("costs:rule-preview"), form)
    assert preview.status_code == 200
    assert "to <strong>Platform</strong>" in preview.content.decode()
    assert AttributionRule.objects.filter(name="lambda").count() == 0
    response = client.post(reverse("costs:rule-create"), form)
    assert response.status_code == 302
    assert AttributionRule.objects.get(name="lambda").team.slug == "platform"


def test_unallocated_explorer_links_to_a_prefilled_rule(client, loaded, admin):
    client.force_login(admin)
    body = client.get(reverse("costs:unallocated"), {"period": "2024-09-01"}).content.decode()
    assert "make a rule from this" in body
    prefilled = client.get(reverse("costs:rule-create") + "?sub_account_id=11353890204")
    assert 'value="11353890204"' in prefilled.content.decode()


# --- API -------------------------------------------------------------------------------------


@pytest.mark.sqlite
def test_lines_api_scopes_to_the_callers_team(client, loaded, requester, org):
    client.force_login(requester)
    response = client.get("/api/v1/costs/lines/", {"month": "2024-09", "limit": 500})
    assert response.status_code == 200
    body = response.json()
    payments_lines = CostLine.objects.filter(
        team=org["payments"], charge_period_start__year=2024, charge_period_start__month=9
    )
    assert body["count"] == payments_lines.count() > 0
    assert {line["team"] for line in body["results"]} == {"payments"}
    first = body["results"][0]
    assert isinstance(first["billed_cost"], str) and isinstance(first["effective_cost"], str)
    assert first["rule"] == "payments"
    assert (
        client.get("/api/v1/costs/lines/", {"month": "2024-09", "team": "search"}).status_code
        == 404
    )
    assert (
        client.get("/api/v1/costs/lines/", {"month": "2024-09", "team": "nope"}).status_code == 404
    )
    assert (
        client.get("/api/v1/costs/lines/", {"month": "2024-09", "team": "payments"}).json()["count"]
        == body["count"]
    )


def test_lines_api_for_finance_includes_unallocated(client, loaded, finance):
    client.force_login(finance)
    body = client.get("/api/v1/costs/lines/", {"month": "2024-09", "limit": 5}).json()
    assert (
        body["count"]
        == CostLine.objects.filter(
            charge_period_start__year=2024, charge_period_start__month=9
        ).count()
    )
    assert client.get("/api/v1/costs/lines/").status_code == 400
    assert client.get("/api/v1/costs/lines/", {"month": "2024-9x"}).status_code == 400


def test_imports_api(client, loaded, admin, requester, django_assert_max_num_queries):
    client.force_login(admin)
    with django_assert_max_num_queries(8):
        body = client.get("/api/v1/costs/imports/").json()
    assert body["results"][0]["id"] == loaded.pk
    assert body["results"][0]["billed_total"] == "20.520226728990"
    client.force_login(requester)
    assert client.get("/api/v1/costs/imports/").json()["count"] == 0


def test_anonymous_is_refused(client, loaded):
    assert client.get("/api/v1/costs/lines/", {"month": "2024-09"}).status_code == 401
    assert client.get(reverse("costs:coverage")).status_code == 302


def test_watched_folder_imports_and_moves_files(tmp_path, org, settings):
    from costs.tasks import watch_folder_once

    settings.COSTS_WATCH_SETTLE_SECONDS = 0
    inbox = tmp_path / "inbox" / "aws-main"
    inbox.mkdir(parents=True)
    (inbox / "sep.csv").write_bytes(SAMPLE.read_bytes())
    (inbox / "notes.txt").write_text("ignored")
    # written a minute ago by the test's clock (the file system stamps the real time)
    a_minute_ago = time.time() - 60
    for path in inbox.iterdir():
        os.utime(path, (a_minute_ago, a_minute_ago))
    run_ids = watch_folder_once(str(tmp_path / "inbox"))
    assert len(run_ids) == 1
    run = ImportRun.objects.get(pk=run_ids[0])
    assert (run.status, run.origin, run.source.name) == ("succeeded", "watched", "aws-main")
    assert not (inbox / "sep.csv").exists()
    assert (inbox / "done" / f"{run.pk}_sep.csv").exists()
    assert watch_folder_once(str(tmp_path / "inbox")) == []
