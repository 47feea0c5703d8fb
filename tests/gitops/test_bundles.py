"""Requestable bundles: one request with one (the strictest) approval path, partial holdings
shown, the link that opens the form with the bundle picked; assignment rules whose preview is
what the apply does."""

from __future__ import annotations

import pytest
from django.urls import reverse

from access import services
from access.models import AccessRequest, BundleAssignment, BundleRequest, Grant
from audit.models import AuditEvent
from gitops.services import config_apply, config_plan
from tests.access.factories import grant_directly, make_entitlement, make_policy, make_service
from tests.conftest import make_user
from tests.factories import PASSWORD


@pytest.fixture
def bundle(org, admin):
    make_policy("default", [("manager", 1)])
    strict = make_policy("two-step", [("manager", 1), ("service_owner", 1)])
    svc = make_service(org["search"], slug="search-cluster")
    read = make_entitlement(svc, slug="read")
    write = make_entitlement(svc, slug="write", risk="medium", policy=strict)
    dash = make_entitlement(svc, slug="dashboards")
    return services.bundle_save(
        actor=admin,
        slug="search-team",
        name="Search team",
        entitlements=[read, write, dash],
    )


@pytest.mark.django_db
def test_the_link_opens_the_form_with_the_bundle_picked_and_partial_holdings(
    client, bundle, requester
):
    read = bundle.entitlements.get(slug="read")
    grant_directly(requester, read)
    client.login(email=requester.email, password=PASSWORD)
    response = client.get(reverse("access:request-new") + "?bundle=search-team")
    assert response.status_code == 302
    assert response["Location"] == "/bundles/search-team/request/"
    page = client.get(response["Location"]).content.decode()
    assert "Request Search team" in page
    assert '<tr class="holding-held"><td>search-cluster/read</td>' in page
    assert page.count('class="holding-missing"') == 2
    assert "2 of 3 to request." in page
    assert "<strong>Two-Step</strong>" in page  # the strictest policy


@pytest.mark.django_db
def test_bundle_request_is_one_item_on_the_strictest_path(
    client, bundle, requester, manager, service_owner, other_team_user
):
    grant_directly(requester, bundle.entitlements.get(slug="read"))
    client.login(email=requester.email, password=PASSWORD)
    response = client.post(
        "/bundles/search-team/request/", {"principal": requester.pk, "justification": "on-boarding"}
    )
    found = BundleRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/bundle-requests/{found.pk}/"
    members = list(found.member_requests.order_by("entitlement__slug"))
    assert [m.entitlement.slug for m in members] == ["dashboards", "write"]
    assert found.already_held == ["search-cluster/read"]
    assert found.policy_slug == "two-step"
    assert all([s["source"] for s in m.stages] == ["policy:two-step"] * 2 for m in members)
    assert AuditEvent.objects.filter(action="access_bundle.requested").count() == 1

    # someone else sees nothing of it
    client.login(email=other_team_user.email, password=PASSWORD)
    assert client.get(f"/bundle-requests/{found.pk}/").status_code == 404
    assert client.post(f"/bundle-requests/{found.pk}/approve/").status_code == 404
    assert set(found.member_requests.values_list("current_stage", flat=True)) == {0}

    # the manager approves the bundle once: both members move on
    client.login(email=manager.email, password=PASSWORD)
    page = client.get(f"/bundle-requests/{found.pk}/").content.decode()
    assert "Approve the bundle" in page
    client.post(f"/bundle-requests/{found.pk}/approve/", {"reason": "ok"})
    assert set(found.member_requests.values_list("current_stage", flat=True)) == {1}
    # the owner team approves it once: both granted
    services.bundle_request_approve(actor=service_owner, bundle_request_id=found.pk)
    assert set(found.member_requests.values_list("status", flat=True)) == {"approved"}
    assert services.bundle_request_status(found) == "approved"
    assert Grant.objects.filter(principal=requester, status="active").count() == 3


@pytest.mark.django_db
def test_a_bundle_already_held_is_not_requested_again(bundle, requester):
    for ent in bundle.entitlements.all():
        grant_directly(requester, ent)
    from portal.core.errors import Conflict

    with pytest.raises(Conflict):
        services.bundle_request_submit(
            actor=requester, bundle=bundle, principal=requester, justification="x"
        )
    assert not AccessRequest.objects.exists() and not BundleRequest.objects.exists()


BUNDLES = """
    bundles:
      - slug: search-team
        name: Search team
        entitlements: [search-cluster/read, search-cluster/dashboards]
        assignment_rules:
          - slug: payments-people
            teams: [payments]
"""


@pytest.mark.django_db
def test_assignment_rule_preview_is_what_apply_does(tree, bundle, repo, requester, manager, org):
    contractor = make_user("c@example.com", team=org["search"], worker_type="contractor")
    tree.write("bundles.yaml", BUNDLES)
    plan = config_plan(root=tree.root)
    (change,) = plan.changes
    assert change.op == "update" and change.key == "search-team"
    preview = change.note
    assert preview == (
        "assignment rules: gain 4: manager@example.com search-cluster/dashboards; "
        "manager@example.com search-cluster/read; requester@example.com "
        "search-cluster/dashboards; requester@example.com search-cluster/read"
    )
    config_apply(actor=repo, root=tree.root, plan_hash=plan.hash)
    made = sorted(
        f"{a.user.email} {a.entitlement}"
        for a in BundleAssignment.objects.filter(ended_at__isnull=True)
    )
    assert "assignment rules: gain 4: " + "; ".join(made) == preview
    assert Grant.objects.filter(principal__in=[requester, manager], status="active").count() == 4
    assert config_plan(root=tree.root).changes == []

    # the rule moves to contractors: the preview names who gains and who loses, apply agrees
    tree.write("bundles.yaml", BUNDLES.replace("teams: [payments]", "worker_types: [contractor]"))
    plan = config_plan(root=tree.root)
    (change,) = plan.changes
    assert change.note == (
        "assignment rules: gain 2: c@example.com search-cluster/dashboards; c@example.com "
        "search-cluster/read | lose 4: manager@example.com search-cluster/dashboards; "
        "manager@example.com search-cluster/read; requester@example.com "
        "search-cluster/dashboards; requester@example.com search-cluster/read"
    )
    config_apply(actor=repo, root=tree.root, plan_hash=plan.hash)
    assert Grant.objects.filter(principal__in=[requester, manager], status="active").count() == 0
    assert Grant.objects.filter(principal=contractor, status="active").count() == 2
    assert (
        AuditEvent.objects.filter(
            action="grant.revoke", actor_label="system:assignment-rules"
        ).count()
        == 4
    )


@pytest.mark.django_db
def test_service_preview_equals_apply(bundle, admin, requester, manager):
    spec = services.RuleSpec(slug="mgr", manager_subtree=manager.email)
    preview = services.bundle_assignment_preview(bundle=bundle, rules=[spec]).summary()
    services.assignment_rule_save(actor=admin, bundle=bundle, spec=spec)
    result = services.bundle_assignments_apply(bundle=bundle)
    assert result["gain"] == preview["gain"] and result["lose"] == preview["lose"] == []
    assert [g.split()[0] for g in result["gain"]] == ["requester@example.com"] * 3
    assert result["skipped"] == []


@pytest.mark.django_db
def test_only_admins_define_bundles_and_rules(bundle, requester):
    from portal.core.errors import NotPermitted

    with pytest.raises(NotPermitted):
        services.bundle_save(actor=requester, slug="x", name="X", entitlements=[])
    with pytest.raises(NotPermitted):
        services.assignment_rule_save(
            actor=requester, bundle=bundle, spec=services.RuleSpec(slug="r", teams=["payments"])
        )


@pytest.mark.django_db
def test_bundle_removed_from_the_tree_revokes_rule_grants_and_is_retired(
    tree, bundle, repo, requester, manager
):
    tree.write("bundles.yaml", BUNDLES)
    plan = config_plan(root=tree.root)
    config_apply(actor=repo, root=tree.root, plan_hash=plan.hash)
    assert Grant.objects.filter(status="active").count() == 4
    tree.write("bundles.yaml", "bundles: []\n")
    plan = config_plan(root=tree.root)
    (change,) = plan.changes
    assert change.op == "delete" and change.note.startswith("assignment rules: lose 4: ")
    config_apply(actor=repo, root=tree.root, plan_hash=plan.hash)
    assert Grant.objects.filter(status="active").count() == 0
    bundle.refresh_from_db()
    assert not bundle.requestable and not bundle.rules.exists()  # kept for its history
    assert config_plan(root=tree.root).changes == []


@pytest.mark.django_db
def test_a_bundle_without_history_is_deleted(tree, bundle, repo):
    tree.write("bundles.yaml", "bundles: []\n")
    plan = config_plan(root=tree.root)
    config_apply(actor=repo, root=tree.root, plan_hash=plan.hash)
    from access.models import AccessBundle

    assert not AccessBundle.objects.exists()


@pytest.mark.django_db
def test_rule_page_previews_then_saves_what_it_previewed(client, bundle, admin, requester, manager):
    client.login(email=admin.email, password=PASSWORD)
    url = "/bundles/search-team/rules/"
    form = {"slug": "payments", "teams": "payments", "action": "preview"}
    page = client.post(url, form).content.decode()
    gains = [
        f"<li>{who} search-cluster/{e}</li>"
        for who in ("manager@example.com", "requester@example.com")
        for e in ("dashboards", "read", "write")
    ]
    assert all(g in page for g in gains)
    assert "Gain (6)" in page and "Lose (0)" in page
    assert not BundleAssignment.objects.exists()  # a preview writes nothing
    response = client.post(url, {**form, "action": "save"})
    assert response.status_code == 302
    made = sorted(
        f"<li>{a.user.email} {a.entitlement}</li>" for a in BundleAssignment.objects.all()
    )
    assert made == sorted(gains)

    client.login(email=requester.email, password=PASSWORD)
    assert client.get(url).status_code == 404
    assert client.post(url, {**form, "slug": "x", "action": "save"}).status_code == 404
    assert bundle.rules.count() == 1
