"""Pages of unused access: scoping of every page, who may act, CSRF, methods, query caps."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from access.models import Grant
from audit.models import AuditEvent
from tests.access.factories import make_entitlement, make_service
from tests.usage.support import aged_grant, cover
from usage import services
from usage.models import UnusedRemoval, UsageMappingRule

pytestmark = pytest.mark.django_db


@pytest.fixture
def scheduled(org, requester):
    """requester's (payments) grant of a search-owned service, scheduled for removal now."""
    now = timezone.now()
    svc = make_service(org["search"], "warehouse")
    cover(svc, now=now)
    grant = aged_grant(requester, make_entitlement(svc, "read"), last_used_days=None, now=now)
    services.unused_daily(now=now)
    return UnusedRemoval.objects.get(grant=grant)


@pytest.mark.sqlite
@pytest.mark.parametrize(
    ("who", "sees"),
    [
        ("requester", True),  # the holder
        ("manager", True),  # the holder's manager
        ("service_owner", True),  # the owner team of the service
        ("security", True),
        ("auditor", True),
        ("admin", True),
        ("other_team_user", False),
        ("finance", False),
    ],
)
def test_list_and_detail_are_scoped(client, request, scheduled, who, sees):
    client.force_login(request.getfixturevalue(who))
    page = client.get("/unused-access/")
    assert page.status_code == 200
    assert (f'id="removal-{scheduled.pk}"' in page.text) is sees
    detail = client.get(f"/unused-access/removals/{scheduled.pk}/")
    assert detail.status_code == (200 if sees else 404)


def test_freshness_is_shown(client, scheduled, requester):
    client.force_login(requester)
    page = client.get("/unused-access/")
    assert 'id="freshness"' in page.text
    assert "warehouse" in page.text and "cloudtrail" in page.text


def test_holder_opts_out_from_the_page(client, scheduled, requester):
    client.force_login(requester)
    page = client.get(f"/unused-access/removals/{scheduled.pk}/")
    assert 'id="opt-out"' in page.text
    response = client.post(
        f"/unused-access/removals/{scheduled.pk}/opt-out/",
        {"reason": "month-end reporting", "days": 30},
    )
    assert response.status_code == 302
    scheduled.refresh_from_db()
    assert scheduled.status == "opted_out"


def test_opt_out_beyond_the_bound_is_a_form_error(client, scheduled, requester):
    client.force_login(requester)
    response = client.post(
        f"/unused-access/removals/{scheduled.pk}/opt-out/", {"reason": "keep it", "days": 365}
    )
    assert response.status_code == 400
    assert "an opt-out lasts 1 to 90 days" in response.text
    scheduled.refresh_from_db()
    assert scheduled.status == "scheduled"


def test_stranger_cannot_opt_out_404_and_visible_non_actor_403(
    client, scheduled, other_team_user, admin
):
    events = AuditEvent.objects.filter(action__startswith="unused.").count()
    client.force_login(other_team_user)
    url = f"/unused-access/removals/{scheduled.pk}/opt-out/"
    assert client.post(url, {"reason": "keep it", "days": 5}).status_code == 404
    client.force_login(admin)  # sees everything, but only the people close to it opt out
    page = client.get(f"/unused-access/removals/{scheduled.pk}/")
    assert 'id="opt-out"' not in page.text
    assert client.post(url, {"reason": "keep it", "days": 5}).status_code == 403
    scheduled.refresh_from_db()
    assert scheduled.status == "scheduled"
    assert AuditEvent.objects.filter(action__startswith="unused.").count() == events


def test_mutations_need_post_and_csrf(scheduled, requester):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(requester)
    url = f"/unused-access/removals/{scheduled.pk}/opt-out/"
    assert csrf_client.get(url).status_code == 405
    assert csrf_client.post(url, {"reason": "keep it", "days": 5}).status_code == 403
    scheduled.refresh_from_db()
    assert scheduled.status == "scheduled"


def test_restore_from_the_page(client, scheduled, requester):
    now = timezone.now()
    UnusedRemoval.objects.filter(pk=scheduled.pk).update(remove_after=now - timedelta(seconds=1))
    services.removals_remove_due(now=now)
    scheduled.refresh_from_db()
    assert scheduled.status == "removed"
    client.force_login(requester)
    page = client.get(f"/unused-access/removals/{scheduled.pk}/")
    assert 'id="restore"' in page.text
    response = client.post(
        f"/unused-access/removals/{scheduled.pk}/restore/", {"reason": "needed after all"}
    )
    assert response.status_code == 302
    scheduled.refresh_from_db()
    assert scheduled.status == "restored"
    assert Grant.objects.get(pk=scheduled.restored_grant_id).status == "active"


def test_list_query_count_is_bounded(
    client, org, scheduled, requester, manager, admin, django_assert_max_num_queries
):
    now = timezone.now()
    svc = scheduled.service
    for i in range(5):
        aged_grant(
            requester if i % 2 else manager,
            make_entitlement(svc, f"extra-{i}"),
            last_used_days=None,
            now=now,
        )
    services.unused_daily(now=now)
    assert UnusedRemoval.objects.count() == 6
    client.force_login(admin)
    with django_assert_max_num_queries(20):
        page = client.get("/unused-access/?show=all")
    assert page.text.count('id="removal-') == 6


# --- mapping rules (admins) -------------------------------------------------------------
@pytest.mark.sqlite
@pytest.mark.parametrize(
    ("who", "status"),
    [("requester", 404), ("service_owner", 404), ("security", 404), ("admin", 200)],
)
def test_rules_page_is_for_admins(client, request, who, status):
    client.force_login(request.getfixturevalue(who))
    assert client.get("/unused-access/rules/").status_code == status


def test_admin_adds_and_deletes_a_rule(client, org, admin):
    ent = make_entitlement(make_service(org["search"], "s3"), "read")
    client.force_login(admin)
    response = client.post(
        "/unused-access/rules/",
        {
            "form": "rule",
            "event_source": "s3.amazonaws.com",
            "event_name": "Get*",
            "entitlement": ent.pk,
        },
    )
    assert response.status_code == 302
    rule = UsageMappingRule.objects.get()
    assert (rule.event_source, rule.event_name, rule.entitlement) == (
        "s3.amazonaws.com",
        "Get*",
        ent,
    )
    duplicate = client.post(
        "/unused-access/rules/",
        {
            "form": "rule",
            "event_source": "s3.amazonaws.com",
            "event_name": "Get*",
            "entitlement": ent.pk,
        },
    )
    assert duplicate.status_code == 400
    assert "already exists" in duplicate.text
    bad = client.post(
        "/unused-access/rules/",
        {
            "form": "rule",
            "event_source": "s3 amazonaws",
            "event_name": "Get*",
            "entitlement": ent.pk,
        },
    )
    assert bad.status_code == 400
    assert "without spaces" in bad.text
    assert client.post(f"/unused-access/rules/{rule.pk}/delete/").status_code == 302
    assert UsageMappingRule.objects.count() == 0
    assert [e.action for e in AuditEvent.objects.filter(action__startswith="usage.rule")] == [
        "usage.rule_created",
        "usage.rule_deleted",
    ]


def test_non_admin_cannot_post_rules(client, org, service_owner):
    ent = make_entitlement(make_service(org["search"], "s3"), "read")
    client.force_login(service_owner)
    response = client.post(
        "/unused-access/rules/",
        {
            "form": "rule",
            "event_source": "s3.amazonaws.com",
            "event_name": "*",
            "entitlement": ent.pk,
        },
    )
    assert response.status_code == 404
    assert UsageMappingRule.objects.count() == 0


def test_admin_adds_an_alias(client, admin, requester):
    client.force_login(admin)
    response = client.post(
        "/unused-access/rules/",
        {"form": "alias", "external_id": "arn:aws:iam::1:user/req", "user": requester.pk},
    )
    assert response.status_code == 302
    assert requester.usage_aliases.get().external_id == "arn:aws:iam::1:user/req"


def test_list_annotations_agree_with_the_policies(scheduled, personas):
    from usage import policies

    for user in personas.values():
        [row] = list(UnusedRemoval.objects.filter(pk=scheduled.pk).select_related("service"))
        policies.annotate_actions(user, [row])
        assert row.may_opt_out == policies.may_opt_out(user, scheduled), user
        assert row.may_restore is False  # not removed yet
    UnusedRemoval.objects.filter(pk=scheduled.pk).update(status="removed")
    scheduled.refresh_from_db()
    for user in personas.values():
        [row] = list(UnusedRemoval.objects.filter(pk=scheduled.pk).select_related("service"))
        policies.annotate_actions(user, [row])
        assert row.may_restore == policies.may_restore(user, scheduled), user
        assert row.may_opt_out is False
