"""Reads of access patterns, scoped by the viewer (not visible ⇒ Http404)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404

from access.models import RISK_ORDER, Entitlement, FollowUpReview, Grant, Service
from access.selectors import grants_for_viewer
from accounts.models import Team, User

from . import matrix as mx
from . import outliers as ol
from . import policies
from .models import BundleApplication, MiningRun, StandardBundle


# --- Scope ----------------------------------------------------------------------------
def teams_for_map(*, viewer) -> QuerySet[Team]:
    ids = policies.map_team_ids(viewer)
    qs = Team.objects.order_by("name")
    return qs if ids is None else qs.filter(pk__in=ids)


def services_for_map(*, viewer) -> QuerySet[Service]:
    ids = policies.map_service_owner_team_ids(viewer)
    qs = Service.objects.select_related("owner_team").order_by("name")
    return qs if ids is None else qs.filter(owner_team_id__in=ids)


def team_for_map(*, viewer, slug: str) -> Team:
    return get_object_or_404(teams_for_map(viewer=viewer), slug=slug)


def service_for_map(*, viewer, slug: str) -> Service:
    return get_object_or_404(services_for_map(viewer=viewer), slug=slug)


# --- The access map (P1) --------------------------------------------------------------
@dataclass
class AccessMatrix:
    rows: list[dict]  # {"id", "label", "email", "team"}
    cols: list[dict]  # {"id", "label", "risk", "service"}
    held: dict[int, set[int]]
    method: str  # "roles" (ordered by a mining run's roles) or "frequency"
    run_id: int | None = None
    holders: Counter = field(default_factory=Counter)  # entitlement id -> holders in the map

    @property
    def cells(self) -> int:
        return sum(len(v) for v in self.held.values())


def _entitlement_cols(ids) -> dict[int, dict]:
    return {
        e["id"]: {
            "id": e["id"],
            "label": f"{e['service__slug']}:{e['slug']}",
            "risk": e["risk"],
            "service": e["service__slug"],
        }
        for e in Entitlement.objects.filter(pk__in=ids).values(
            "id", "slug", "risk", "service__slug"
        )
    }


def _person_rows(qs) -> dict[int, dict]:
    return {
        u["id"]: {
            "id": u["id"],
            "label": u["name"] or u["email"],
            "email": u["email"],
            "team": u["team__slug"] or "",
        }
        for u in qs.values("id", "name", "email", "team__slug")
    }


def _latest_roles(**scope) -> tuple[int | None, list]:
    run = MiningRun.objects.filter(status=MiningRun.Status.DONE, **scope).order_by("-pk").first()
    if run is None:
        return None, []
    roles = [
        ([int(u) for u in p.user_ids], [int(e) for e in p.entitlement_ids])
        for p in run.proposals.all()
    ]
    return run.pk, roles


def _build(people: dict[int, dict], pairs, **scope) -> AccessMatrix:
    held: dict[int, set[int]] = defaultdict(set)
    for user_id, ent_id in pairs:
        held[user_id].add(ent_id)
    cols = _entitlement_cols({e for ents in held.values() for e in ents})
    run_id, roles = _latest_roles(**scope)
    rows, col_order, method = mx.seriate(held, rows=list(people), cols=list(cols), roles=roles)
    holders = Counter(e for ents in held.values() for e in ents)
    return AccessMatrix(
        rows=[people[r] for r in rows],
        cols=[cols[c] for c in col_order],
        held=dict(held),
        method=method,
        run_id=run_id if method == "roles" else None,
        holders=holders,
    )


def team_access_matrix(*, team: Team) -> AccessMatrix:
    """Active members of the team (rows) × every entitlement one of them actively holds."""
    people = _person_rows(User.objects.filter(team=team, is_active=True))
    pairs = Grant.objects.filter(
        principal_id__in=list(people), status=Grant.Status.ACTIVE
    ).values_list("principal_id", "entitlement_id")
    return _build(people, pairs, team=team)


def service_access_matrix(*, service: Service) -> AccessMatrix:
    """Active holders of the service's entitlements (rows) × those entitlements."""
    pairs = list(
        Grant.objects.filter(
            entitlement__service=service, status=Grant.Status.ACTIVE, principal__is_active=True
        ).values_list("principal_id", "entitlement_id")
    )
    people = _person_rows(User.objects.filter(pk__in={u for u, _ in pairs}))
    return _build(people, pairs, service=service)


def team_comparison(*, matrix: AccessMatrix, person_id: int) -> mx.PeerComparison:
    if person_id not in {r["id"] for r in matrix.rows}:
        raise Http404("no such person in this team")
    return mx.compare_with_team(person_id, matrix.held, [r["id"] for r in matrix.rows])


# --- Mining runs and bundles (P2) -------------------------------------------------------
def runs_for_viewer(*, viewer) -> QuerySet[MiningRun]:
    qs = MiningRun.objects.select_related("team", "service", "requested_by")
    team_ids = policies.map_team_ids(viewer)
    owner_ids = policies.map_service_owner_team_ids(viewer)
    if team_ids is None:
        return qs
    return qs.filter(team_id__in=team_ids) | qs.filter(service__owner_team_id__in=owner_ids)


def run_get(*, viewer, pk: int) -> MiningRun:
    return get_object_or_404(runs_for_viewer(viewer=viewer), pk=pk)


@dataclass
class ProposalView:
    pk: int
    index: int
    users: list[str]
    entitlements: list[dict]
    cells: int


def run_proposals(*, run: MiningRun) -> list[ProposalView]:
    proposals = list(run.proposals.all())
    user_ids = {int(u) for p in proposals for u in p.user_ids}
    ent_ids = {int(e) for p in proposals for e in p.entitlement_ids}
    names = {
        u["id"]: u["name"] or u["email"]
        for u in User.objects.filter(pk__in=user_ids).values("id", "name", "email")
    }
    cols = _entitlement_cols(ent_ids)
    return [
        ProposalView(
            pk=p.pk,
            index=p.index,
            users=sorted(names.get(int(u), f"#{u}") for u in p.user_ids),
            entitlements=[cols[int(e)] for e in p.entitlement_ids if int(e) in cols],
            cells=p.cells,
        )
        for p in proposals
    ]


def bundles_for_viewer(*, viewer) -> QuerySet[StandardBundle]:
    ids = policies.map_team_ids(viewer)
    qs = StandardBundle.objects.select_related("team")
    return qs if ids is None else qs.filter(team_id__in=ids)


def bundle_get(*, viewer, pk: int) -> StandardBundle:
    return get_object_or_404(bundles_for_viewer(viewer=viewer), pk=pk)


def bundle_for_team(*, team: Team) -> StandardBundle | None:
    return StandardBundle.objects.filter(team=team, active=True).first()


def bundle_applications(*, bundle: StandardBundle, limit: int = 200):
    return (
        BundleApplication.objects.filter(version__bundle=bundle)
        .select_related("user", "entitlement__service", "grant", "version")
        .order_by("-created_at", "-pk")[:limit]
    )


def bundle_flagged(*, bundle: StandardBundle) -> list[dict]:
    """Grants this bundle gave that are still held by someone no longer in the team (movers),
    with the mover review item that asks whether to keep them."""
    rows = (
        BundleApplication.objects.filter(
            version__bundle=bundle,
            outcome=BundleApplication.Outcome.GRANTED,
            grant__status__in=Grant.HELD_STATUSES,
        )
        .exclude(user__team_id=bundle.team_id)
        .select_related("user__team", "entitlement__service", "grant", "version")
        .order_by("user__email", "entitlement_id")
    )
    rows = list(rows)
    reviews = {
        f.grant_id: f
        for f in FollowUpReview.objects.filter(
            kind=FollowUpReview.Kind.MOVER, grant_id__in=[r.grant_id for r in rows]
        ).order_by("pk")
    }
    return [{"application": r, "review": reviews.get(r.grant_id)} for r in rows]


# --- Outliers (P3) ----------------------------------------------------------------------
@dataclass
class OutlierRow:
    grant_id: int
    person: dict
    entitlement: dict
    score: float
    share: float
    explanations: list[str]


@dataclass
class DistanceRow:
    person: dict
    distance: float
    held: int
    common: int
    extra: int  # held, not in the team's common set
    lacking: int  # in the common set, not held


@dataclass
class OutlierReport:
    outliers: list[OutlierRow]
    distances: list[DistanceRow]
    subjects: int


class _Without:
    """Counts of a group that includes the person, read as if it did not (no copying)."""

    __slots__ = ("counts", "mine")

    def __init__(self, counts: Counter, mine: set[int]):
        self.counts, self.mine = counts, mine

    def get(self, entitlement_id: int, default: int = 0) -> int:
        n = self.counts.get(entitlement_id, default)
        return n - 1 if entitlement_id in self.mine and n else n


def outliers_for_viewer(*, viewer, team: Team | None = None, limit: int = 200) -> OutlierReport:
    """Unusual active grants among those the viewer may see (their reports', their services',
    or everyone's), excluding the viewer's own unless they see all access."""
    visible = grants_for_viewer(viewer=viewer).filter(
        status=Grant.Status.ACTIVE, principal__is_active=True
    )
    if not policies.sees_all_patterns(viewer):
        visible = visible.exclude(principal=viewer)
    if team is not None:
        visible = visible.filter(principal__team=team)
    subject_grants = list(visible.values_list("pk", "principal_id", "entitlement_id"))
    if not subject_grants:
        return OutlierReport([], [], 0)
    subjects = {u for _, u, _ in subject_grants}

    people = {
        u["id"]: u
        for u in User.objects.filter(is_active=True).values(
            "id", "name", "email", "team_id", "team__slug", "manager_id", "worker_type"
        )
    }
    children: dict[int, list[int]] = defaultdict(list)
    for u in people.values():
        if u["manager_id"]:
            children[u["manager_id"]].append(u["id"])

    def subtree(manager_id: int) -> set[int]:
        out: set[int] = set()
        frontier = [manager_id]
        while frontier:
            nxt = [c for m in frontier for c in children.get(m, ()) if c not in out]
            out.update(nxt)
            frontier = nxt
        out.discard(manager_id)
        return out

    team_members: dict[int, list[int]] = defaultdict(list)
    for u in people.values():
        if u["team_id"]:
            team_members[u["team_id"]].append(u["id"])
    subject_teams = {people[s]["team_id"] for s in subjects if s in people}
    managers = {people[s]["manager_id"] for s in subjects if s in people} - {None}
    subtrees = {m: subtree(m) for m in managers}
    scope = set(subjects)
    for t in subject_teams - {None}:
        scope.update(team_members[t])
    for members in subtrees.values():
        scope |= members
    held: dict[int, set[int]] = defaultdict(set)
    for u, e in Grant.objects.filter(
        status=Grant.Status.ACTIVE, principal_id__in=list(scope)
    ).values_list("principal_id", "entitlement_id"):
        held[u].add(e)
    worker_counts: dict[str, Counter] = defaultdict(Counter)
    worker_sizes = Counter(u["worker_type"] for u in people.values())
    for worker_type, ent_id, n in (
        Grant.objects.filter(status=Grant.Status.ACTIVE, principal__is_active=True)
        .values("principal__worker_type", "entitlement_id")
        .annotate(n=Count("id"))
        .values_list("principal__worker_type", "entitlement_id", "n")
        .order_by()
    ):
        worker_counts[worker_type][ent_id] = n

    team_counts = {
        t: Counter(e for u in team_members[t] for e in held.get(u, ()))
        for t in subject_teams - {None}
    }
    subtree_counts = {
        m: Counter(e for u in members for e in held.get(u, ())) for m, members in subtrees.items()
    }
    ents = _entitlement_cols({e for _, _, e in subject_grants})
    worker_labels = dict(User.WorkerType.choices)

    def minus(counts: Counter, mine: set[int]) -> _Without:
        return _Without(counts, mine)

    def person_view(u: dict) -> dict:
        return {
            "id": u["id"],
            "label": u["name"] or u["email"],
            "email": u["email"],
            "team": u["team__slug"] or "",
        }

    groups_of: dict[int, list[ol.PeerGroup]] = {}
    for s in subjects:
        u = people.get(s)
        if u is None:
            continue
        mine = held.get(s, set())
        groups = []
        if u["team_id"]:
            groups.append(
                ol.PeerGroup(
                    "team",
                    "teammates",
                    len(team_members[u["team_id"]]) - 1,
                    minus(team_counts[u["team_id"]], mine),
                )
            )
        if u["manager_id"] and u["manager_id"] in people:
            boss = people[u["manager_id"]]
            members = subtrees[u["manager_id"]]
            groups.append(
                ol.PeerGroup(
                    "manager",
                    f"people under {boss['name'] or boss['email']}",
                    len(members) - (1 if s in members else 0),
                    minus(subtree_counts[u["manager_id"]], mine),
                )
            )
        wt = u["worker_type"]
        groups.append(
            ol.PeerGroup(
                "worker_type",
                f"{worker_labels.get(wt, wt).lower()}s",
                worker_sizes[wt] - 1,
                minus(worker_counts[wt], mine),
            )
        )
        groups_of[s] = groups

    rows: list[OutlierRow] = []
    for grant_id, s, e in subject_grants:
        if s not in groups_of or e not in ents:
            continue
        finding = ol.score_access(
            entitlement_id=e,
            entitlement_label=ents[e]["label"],
            risk=ents[e]["risk"],
            groups=groups_of[s],
            explain=False,  # explained below, for the rows shown only
        )
        if finding is not None:
            rows.append(
                OutlierRow(
                    grant_id=grant_id,
                    person=person_view(people[s]),
                    entitlement=ents[e],
                    score=finding.score,
                    share=finding.share,
                    explanations=[],
                )
            )
    rows.sort(
        key=lambda r: (-r.score, -RISK_ORDER.get(r.entitlement["risk"], 0), r.person["email"])
    )
    rows = rows[:limit]
    for row in rows:
        row.explanations = ol.explain_access(
            entitlement_id=row.entitlement["id"],
            entitlement_label=row.entitlement["label"],
            groups=groups_of[row.person["id"]],
        )

    # Distances describe a person's whole access: only for the viewer's reports (or all).
    if policies.sees_all_patterns(viewer):
        people_visible = subjects
    else:
        from accounts.selectors import user_reports

        people_visible = subjects & set(user_reports(user=viewer).values_list("pk", flat=True))
    common_of = {
        t: ol.common_set(held, team_members[t], ol.COMMON_SET_SHARE) for t in subject_teams - {None}
    }
    distances = []
    for s in people_visible:
        u = people.get(s)
        if u is None or not u["team_id"] or len(team_members[u["team_id"]]) < ol.MIN_PEERS:
            continue
        mine, common = held.get(s, set()), common_of[u["team_id"]]
        distances.append(
            DistanceRow(
                person=person_view(u),
                distance=ol.jaccard_distance(mine, common),
                held=len(mine),
                common=len(common),
                extra=len(mine - common),
                lacking=len(common - mine),
            )
        )
    distances.sort(key=lambda d: (-d.distance, d.person["email"]))
    return OutlierReport(rows, distances[:limit], len(subjects))
