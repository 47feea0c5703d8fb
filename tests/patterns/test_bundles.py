"""P2 standard bundles: adopt/edit (admins only), birthright grants for joiners through the
directory import, idempotence and skips, and movers' bundle grants flagged for review."""

from __future__ import annotations

import pytest

from access.models import FollowUpReview, Grant, SyncJob, ToxicPair
from access.services import grant_birthright
from access.sync.lifecycle import mover_flag
from accounts.directory import parse_text
from accounts.models import TeamMove, User
from accounts.services import JOINER_HOOKS, directory_import
from audit.models import AuditEvent
from patterns import services
from patterns.models import BundleApplication, BundleVersion, MiningProposal, MiningRun
from patterns.services import bundle_joiner_hook
from portal.core.actors import DIRECTORY_IMPORT
from portal.core.errors import Conflict, NotPermitted, ValidationError
from tests.access.factories import make_entitlement, make_service
from tests.conftest import make_user

from .support import catalog, give, held

HEADER = "email,name,team,parent_team,manager_email,worker_type,status,start_date,end_date"


def import_rows(*lines):
    text = HEADER + "\n" + "\n".join(lines) + "\n"
    return directory_import(
        rows=parse_text(text), full=False, dry_run=False, actor=DIRECTORY_IMPORT, source="hr.csv"
    )


@pytest.fixture
def ents(org):
    return catalog(org["search"])[1]


@pytest.fixture
def proposal(admin, org, ents):
    run = MiningRun.objects.create(
        scope="team", team=org["payments"], status="done", progress=1.0, requested_by=admin
    )
    return MiningProposal.objects.create(
        run=run,
        index=1,
        user_ids=[],
        entitlement_ids=[ents["read"].pk, ents["logs"].pk, ents["deploy"].pk],
        cells=0,
    )


def test_the_joiner_hook_is_registered():
    assert bundle_joiner_hook in JOINER_HOOKS


# --- adopt / edit ---------------------------------------------------------------------------
@pytest.mark.sqlite
@pytest.mark.django_db
def test_admin_adopts_a_proposal_edited_down_then_edits_it_to_a_new_version(
    admin, org, ents, proposal
):
    v1 = services.bundle_adopt(
        actor=admin,
        team=org["payments"],
        entitlement_ids=[ents["read"].pk, ents["logs"].pk],
        proposal=proposal,
        note="deploy is not a birthright",
    )
    v2 = services.bundle_adopt(
        actor=admin, team=org["payments"], entitlement_ids=[ents["read"].pk], note="logs too"
    )

    assert (v1.number, v2.number) == (1, 2)
    assert v1.bundle_id == v2.bundle_id
    assert v1.bundle.current == v2
    assert {e.slug for e in v1.entitlements.all()} == {"read", "logs"}
    assert {e.slug for e in v2.entitlements.all()} == {"read"}
    assert v1.source_proposal == proposal and v2.source_proposal is None
    events = AuditEvent.objects.filter(action="patterns.bundle_adopted").order_by("seq")
    assert [e.after["version"] for e in events] == [1, 2]
    assert events[1].before["entitlements"] == ["pay-db/logs", "pay-db/read"]


@pytest.mark.django_db
def test_adopt_is_refused_to_non_admins_and_bad_input_changes_nothing(
    security, manager, admin, org, ents, proposal
):
    for actor in (security, manager):
        with pytest.raises(NotPermitted):
            services.bundle_adopt(
                actor=actor, team=org["payments"], entitlement_ids=[ents["read"].pk]
            )
    with pytest.raises(ValidationError, match="not part of the proposal"):
        services.bundle_adopt(
            actor=admin,
            team=org["payments"],
            entitlement_ids=[ents["admin"].pk],
            proposal=proposal,
        )
    with pytest.raises(ValidationError, match="unknown entitlement ids: 99999"):
        services.bundle_adopt(actor=admin, team=org["payments"], entitlement_ids=[99999])
    with pytest.raises(ValidationError, match="at least one"):
        services.bundle_adopt(actor=admin, team=org["payments"], entitlement_ids=[])
    assert not BundleVersion.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="patterns.bundle").exists()


@pytest.mark.django_db
def test_an_edit_that_changes_nothing_is_a_conflict(admin, org, ents):
    services.bundle_adopt(actor=admin, team=org["payments"], entitlement_ids=[ents["read"].pk])
    with pytest.raises(Conflict):
        services.bundle_adopt(actor=admin, team=org["payments"], entitlement_ids=[ents["read"].pk])
    assert BundleVersion.objects.count() == 1


@pytest.mark.django_db
def test_adopt_and_edit_pages_admin_only(client, admin, security, requester, org, ents, proposal):
    url = f"/patterns/runs/{proposal.run_id}/proposals/1/adopt/"
    data = {
        "team": "payments",
        "entitlements": [ents["read"].pk, ents["logs"].pk],
        "note": "n",
        "name": "",
    }
    client.force_login(requester)  # sees the run (payments) but may not adopt
    assert client.get(url).status_code == 403
    assert client.post(url, data).status_code == 403
    client.force_login(security)
    assert client.post(url, data).status_code == 403
    assert not BundleVersion.objects.exists()

    client.force_login(admin)
    form = client.get(url)
    assert form.status_code == 200
    assert 'name="entitlements"' in form.content.decode()
    response = client.post(url, data)
    assert response.status_code == 302, response.context["form"].errors
    version = BundleVersion.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/patterns/bundles/{version.bundle_id}/"
    assert client.get(response["Location"]).status_code == 200

    edit = f"/patterns/bundles/{version.bundle_id}/edit/"
    client.force_login(requester)
    assert client.get(f"/patterns/bundles/{version.bundle_id}/").status_code == 200
    assert client.post(edit, {"entitlements": [ents["logs"].pk]}).status_code == 403
    client.force_login(admin)
    response = client.post(edit, {"entitlements": [ents["logs"].pk], "note": "no read"})
    assert response.status_code == 302, response.context["form"].errors
    assert BundleVersion.objects.count() == 2


# --- joiners ---------------------------------------------------------------------------------
@pytest.fixture
def payments_bundle(admin, org, ents):
    return services.bundle_adopt(
        actor=admin,
        team=org["payments"],
        entitlement_ids=[ents["read"].pk, ents["logs"].pk, ents["deploy"].pk],
    )


@pytest.mark.sqlite
@pytest.mark.django_db
def test_a_joiner_from_the_directory_import_gets_the_bundle(org, payments_bundle):
    import_rows("new@example.com,New Person,payments,platform,,employee,active,2026-01-01,")

    user = User.objects.get(email="new@example.com")
    assert held(user) == {"read", "logs", "deploy"}
    grants = Grant.objects.filter(principal=user)
    assert {g.status for g in grants} == {"active"}  # no connector: active at once
    ref = f"bundle:payments@v{payments_bundle.number}"
    assert {g.reason for g in grants} == {f"birthright ({ref}): joined team payments"}
    assert {tuple(g.approved_by) for g in grants} == {(ref,)}
    assert AuditEvent.objects.filter(action="grant.birthright").count() == 3
    applied = AuditEvent.objects.get(action="patterns.bundle_applied")
    assert applied.after["granted"] == ["pay-db/deploy", "pay-db/logs", "pay-db/read"]
    assert BundleApplication.objects.filter(user=user, outcome="granted").count() == 3


@pytest.mark.django_db
def test_applying_twice_grants_nothing_more_and_keeps_what_is_held(
    org, admin, ents, payments_bundle
):
    user = make_user("j@example.com", team=org["payments"])
    give({user: ["read"]}, ents)  # already holds read

    first = services.bundle_apply(user=user, team=org["payments"], actor=admin)
    grants = Grant.objects.count()
    events = AuditEvent.objects.count()
    second = services.bundle_apply(user=user, team=org["payments"], actor=admin)

    assert first == {"granted": 2, "skipped": 0}
    assert second == {"granted": 0, "skipped": 0}
    assert Grant.objects.count() == grants
    assert AuditEvent.objects.count() == events
    assert Grant.objects.get(principal=user, entitlement__slug="read").reason == "test set-up"


@pytest.mark.django_db
def test_unrequestable_prerequisite_and_sod_entitlements_are_skipped_with_why(org, admin, ents):
    svc = make_service(org["search"], slug="ledger")
    base = make_entitlement(svc, slug="base")
    needs_base = make_entitlement(svc, slug="needs-base")
    needs_base.prerequisites.add(base)
    orphan_prereq = make_entitlement(svc, slug="cert")
    needs_cert = make_entitlement(svc, slug="needs-cert")
    needs_cert.prerequisites.add(orphan_prereq)
    hidden = make_entitlement(svc, slug="hidden", requestable=False)
    toxic = make_entitlement(svc, slug="approve")
    ToxicPair.objects.create(first=toxic, second=ents["write"], reason="maker/checker")
    services.bundle_adopt(
        actor=admin,
        team=org["payments"],
        entitlement_ids=[e.pk for e in (needs_base, base, needs_cert, hidden, toxic)],
    )
    user = make_user("j@example.com", team=org["payments"])
    give({user: ["write"]}, ents)

    counts = services.bundle_apply(user=user, team=org["payments"], actor=admin)

    assert counts == {"granted": 2, "skipped": 3}
    assert held(user) == {"write", "base", "needs-base"}  # the prerequisite came first
    outcomes = dict(
        BundleApplication.objects.filter(user=user).values_list("entitlement__slug", "outcome")
    )
    assert outcomes == {
        "base": "granted",
        "needs-base": "granted",
        "needs-cert": "prerequisite",
        "hidden": "not_requestable",
        "approve": "sod",
    }
    details = dict(
        BundleApplication.objects.filter(user=user).values_list("entitlement__slug", "detail")
    )
    assert details["needs-cert"] == "missing prerequisite access: ledger/cert"
    assert details["approve"] == "separation of duties: holds pay-db/write (maker/checker)"
    # again: still skipped, recorded once per version
    services.bundle_apply(user=user, team=org["payments"], actor=admin)
    assert BundleApplication.objects.filter(user=user).count() == 5


@pytest.mark.django_db
def test_a_retired_bundle_grants_nothing(org, admin, payments_bundle):
    services.bundle_retire(actor=admin, bundle_id=payments_bundle.bundle_id, reason="reorg")
    user = make_user("j@example.com", team=org["payments"])
    assert services.bundle_apply(user=user, team=org["payments"], actor=admin) == {
        "granted": 0,
        "skipped": 0,
    }
    assert not Grant.objects.filter(principal=user).exists()


@pytest.mark.django_db
def test_birthright_through_a_connector_goes_through_the_outbox(org, admin, requester):
    svc = make_service(org["search"], slug="warehouse", connector="fake")
    ent = make_entitlement(svc, slug="reader")

    grant = grant_birthright(
        actor=admin,
        principal=requester,
        entitlement=ent,
        bundle_ref="bundle:payments@v1",
        reason="joined team payments",
    )

    job = SyncJob.objects.get(grant=grant)
    assert (job.operation, job.origin) == ("grant", "request")
    assert grant.ends_at is not None  # time-bound like every grant


@pytest.mark.django_db
def test_birthright_refusals_write_nothing(org, admin, requester, ents):
    hidden = make_entitlement(ents["read"].service, slug="hidden", requestable=False)
    give({requester: ["read"]}, ents)
    before = (Grant.objects.count(), AuditEvent.objects.count())
    with pytest.raises(NotPermitted):
        grant_birthright(
            actor=admin, principal=requester, entitlement=hidden, bundle_ref="b", reason="r"
        )
    with pytest.raises(Conflict):
        grant_birthright(
            actor=admin, principal=requester, entitlement=ents["read"], bundle_ref="b", reason="r"
        )
    with pytest.raises(ValidationError):
        grant_birthright(
            actor=admin, principal=requester, entitlement=ents["logs"], bundle_ref="b", reason=""
        )
    assert (Grant.objects.count(), AuditEvent.objects.count()) == before


# --- movers ------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_a_movers_old_bundle_grants_are_flagged_and_the_review_says_where_they_came_from(
    client, org, admin, ents, payments_bundle
):
    import_rows(
        "boss@example.com,Boss,search,platform,,employee,active,2020-01-01,",
        "mia@example.com,Mia,payments,platform,boss@example.com,employee,active,2026-01-01,",
    )
    mia = User.objects.get(email="mia@example.com")
    assert held(mia) == {"read", "logs", "deploy"}
    # search's normal: somebody there holds read already
    give({make_user("s1@example.com", team=org["search"]): ["read"]}, ents)

    import_rows(
        "boss@example.com,Boss,search,platform,,employee,active,2020-01-01,",
        "mia@example.com,Mia,search,platform,boss@example.com,employee,active,2026-01-01,",
    )
    move = TeamMove.objects.get(user=mia)
    created = mover_flag(move_id=move.pk)

    flagged = FollowUpReview.objects.filter(team_move=move)
    assert created == 2
    assert {f.grant.entitlement.slug for f in flagged} == {"logs", "deploy"}
    assert all(f.grant.reason.startswith("birthright (bundle:payments@v1)") for f in flagged)
    # the reviewer (the new manager) sees where the grant came from
    client.force_login(User.objects.get(email="boss@example.com"))
    page = client.get("/provisioning/reviews/").content.decode()
    assert "Granted: birthright (bundle:payments@v1): joined team payments" in page
    # and the bundle page lists them as flagged, with their review items
    client.force_login(admin)
    page = client.get(f"/patterns/bundles/{payments_bundle.bundle_id}/").content.decode()
    flagged_section = page.split('id="flagged"')[1].split("</section>")[0]
    assert flagged_section.count("mia@example.com") == 3  # read, logs, deploy still held
    assert flagged_section.count("Open") == 2  # two with an open review, read is search's normal


@pytest.mark.django_db
def test_a_mover_into_a_team_gets_its_bundle(org, admin, ents):
    services.bundle_adopt(actor=admin, team=org["search"], entitlement_ids=[ents["admin"].pk])
    import_rows("kim@example.com,Kim,payments,platform,,employee,active,2026-01-01,")
    kim = User.objects.get(email="kim@example.com")
    assert held(kim) == set()

    import_rows("kim@example.com,Kim,search,platform,,employee,active,2026-01-01,")

    assert held(kim) == {"admin"}


@pytest.mark.django_db
def test_bundle_pages_scoped_by_team(client, org, requester, other_team_user, payments_bundle):
    url = f"/patterns/bundles/{payments_bundle.bundle_id}/"
    client.force_login(requester)
    assert client.get(url).status_code == 200
    assert payments_bundle.bundle.name in client.get("/patterns/bundles/").content.decode()
    client.force_login(other_team_user)
    assert client.get(url).status_code == 404
    assert payments_bundle.bundle.name not in client.get("/patterns/bundles/").content.decode()


# --- demo ------------------------------------------------------------------------------------
@pytest.mark.sqlite
@pytest.mark.django_db
def test_demo_step_finishes_a_run_adopts_a_bundle_and_is_idempotent(org, ents):
    from io import StringIO

    from accounts.models import Team
    from demo.steps.patterns import seed_patterns
    from patterns.models import StandardBundle

    make_user("admin@tollgate.test", team=org["platform"], roles=["platform-admin"])
    checkout = Team.objects.create(slug="checkout", name="Checkout")
    crew = [make_user(f"c{i}@example.com", team=checkout) for i in range(4)]
    give({p: ["read", "logs", "admin"] for p in crew}, ents)
    out = StringIO()

    seed_patterns(stdout=out, rng=None)
    seed_patterns(stdout=out, rng=None)

    run = MiningRun.objects.get(team=checkout)
    assert run.status == "done"
    bundle = StandardBundle.objects.get()
    assert bundle.team == checkout
    # edited down: the critical admin entitlement is not a birthright
    assert {e.slug for e in bundle.current.entitlements.all()} == {"read", "logs"}
    assert "already exist; skipped" in out.getvalue()


@pytest.mark.django_db
def test_retire_page_admin_only_and_reason_required(client, admin, requester, payments_bundle):
    url = f"/patterns/bundles/{payments_bundle.bundle_id}/retire/"
    client.force_login(requester)
    assert client.post(url, {"reason": "reorg"}).status_code == 403
    client.force_login(admin)
    client.post(url, {"reason": ""})
    payments_bundle.bundle.refresh_from_db()
    assert payments_bundle.bundle.active is True
    assert not AuditEvent.objects.filter(action="patterns.bundle_retired").exists()

    assert client.post(url, {"reason": "reorg"}).status_code == 302

    payments_bundle.bundle.refresh_from_db()
    assert payments_bundle.bundle.active is False
    assert AuditEvent.objects.get(action="patterns.bundle_retired").reason == "reorg"


@pytest.mark.django_db
def test_adopting_from_a_service_run_proposes_the_team_most_of_its_people_are_in(
    client, admin, org, ents
):
    crew = [make_user(f"s{i}@example.com", team=org["search"]) for i in range(2)]
    crew.append(make_user("p@example.com", team=org["payments"]))
    run = MiningRun.objects.create(
        scope="service",
        service=ents["read"].service,
        status="done",
        progress=1.0,
        requested_by=admin,
    )
    MiningProposal.objects.create(
        run=run,
        index=1,
        user_ids=[u.pk for u in crew],
        entitlement_ids=[ents["read"].pk],
        cells=3,
    )
    client.force_login(admin)
    page = client.get(f"/patterns/runs/{run.pk}/proposals/1/adopt/")
    assert page.context["form"].initial["team"] == "search"
