"""Deny by default, proven over every route of the project.

The resolver is walked at test time, so routes added later (catalog, requests, API,
costs, ...) are covered without touching this file. Every route is fetched anonymously
with GET and POST; unless its path is on the explicit PUBLIC allowlist, it must answer a
redirect to sign-in, 401 or 403 — never content.

Persona checks live in PERSONA_CASES: add a row (persona, URL builder, expected status)
when a feature adds an object page, e.g. another team's request answers 404.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404

# The stdlib regex parser (public as sre_parse before 3.11, deprecated since).
sre_parse = re._parser  # type: ignore[attr-defined]
sre_constants = re._constants  # type: ignore[attr-defined]

# --- the routes -------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    path: str  # the full route as written in urls.py, e.g. "teams/<slug:slug>/"
    name: str | None
    url: str  # a concrete URL that resolves to this route
    callback: Callable = field(compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.url} ({self.name or 'unnamed'}; /{self.path})"


def _strip_anchors(regex: str) -> str:
    regex = regex.removeprefix("^")
    for end in (r"\Z", "$"):
        regex = regex.removesuffix(end)
    return regex


def _walk(patterns, regex: str = "", written: str = "") -> Iterator[tuple[str, str, URLPattern]]:
    """Yield (full regex, full route as written, pattern) for every endpoint, recursively."""
    for entry in patterns:
        part_regex = regex + _strip_anchors(entry.pattern.regex.pattern)
        part_written = written + _strip_anchors(str(entry.pattern))
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, part_regex, part_written)
        elif isinstance(entry, URLPattern):
            yield part_regex, part_written, entry


# Preferred characters when a pattern allows several: readable and valid for every
# Django converter (int "1", slug/str "x", uuid "1111...-...").
_PREFERRED = "x1"


def _char_for_set(items) -> str:
    negate = any(op == sre_constants.NEGATE for op, _ in items)

    def allowed(ch: str) -> bool:
        code = ord(ch)
        hit = False
        for op, av in items:
            if op == sre_constants.LITERAL:
                hit |= code == av
            elif op == sre_constants.RANGE:
                hit |= av[0] <= code <= av[1]
            elif op == sre_constants.CATEGORY:
                hit |= bool(
                    {
                        sre_constants.CATEGORY_DIGIT: ch.isdigit(),
                        sre_constants.CATEGORY_WORD: ch.isalnum() or ch == "_",
                        sre_constants.CATEGORY_NOT_DIGIT: not ch.isdigit(),
                        sre_constants.CATEGORY_NOT_WORD: not (ch.isalnum() or ch == "_"),
                        sre_constants.CATEGORY_SPACE: ch.isspace(),
                        sre_constants.CATEGORY_NOT_SPACE: not ch.isspace(),
                    }.get(av, False)
                )
        return hit != negate

    for ch in _PREFERRED + "abcdefABCDEF0123456789-_.":
        if allowed(ch):
            return ch
    raise AssertionError(f"no sample character for set {items}")


def _sample(parsed) -> str:
    out: list[str] = []
    for op, av in parsed:
        if op == sre_constants.LITERAL:
            out.append(chr(av))
        elif op == sre_constants.NOT_LITERAL:
            out.append("x" if chr(av) != "x" else "y")
        elif op == sre_constants.ANY:
            out.append("x")
        elif op == sre_constants.IN:
            out.append(_char_for_set(av))
        elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
            low, _high, sub = av
            out.append(_sample(sub) * max(low, 1))
        elif op == sre_constants.SUBPATTERN:
            out.append(_sample(av[-1]))
        elif op == sre_constants.BRANCH:
            out.append(_sample(av[1][0]))
        elif op in (sre_constants.AT, sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            continue
        else:
            raise AssertionError(f"the URL sampler does not know regex op {op}")
    return "".join(out)


def all_routes() -> list[Route]:
    routes = []
    for regex, written, entry in _walk(get_resolver().url_patterns):
        url = "/" + _sample(sre_parse.parse(regex))
        routes.append(Route(path=written, name=entry.name, url=url, callback=entry.callback))
    return routes


# --- the public allowlist ---------------------------------------------------------------
# Full routes (as written in the urls modules, joined) of routes an anonymous visitor may reach.
# Keep it short; every entry must still match a route (checked below).
PUBLIC = {
    "healthz": "liveness probe",
    "readyz": "readiness probe",
    "metrics": "Prometheus scrape: a metrics token or an allowed network (tests/core/test_metrics.py)",
    "accounts/login/": "sign-in",
    "accounts/signup/": "answers 'sign-up closed'",
    "accounts/inactive/": "tells a leaver their account is inactive",
    "accounts/logout/": "anonymous logout is a no-op redirect",
    "accounts/confirm-email/": "e-mail verification flow",
    "accounts/confirm-email/(?P<key>[-:\\w]+)/": "e-mail verification flow",
    "accounts/login/code/confirm/": "login-by-code flow (redirects without a pending login)",
    "accounts/password/reset/": "password reset flow",
    "accounts/password/reset/done/": "password reset flow",
    "accounts/password/reset/key/(?P<uidb36>[0-9A-Za-z]+)-(?P<key>.+)/": "password reset flow",
    "accounts/password/reset/key/done/": "password reset flow",
    "accounts/2fa/authenticate/": "second step of sign-in",
    "accounts/3rdparty/login/cancelled/": "SSO flow",
    "accounts/3rdparty/login/error/": "SSO flow",
    "accounts/3rdparty/signup/": "SSO flow (closed sign-up)",
    "accounts/social/login/cancelled/": "SSO flow (legacy path)",
    "accounts/social/login/error/": "SSO flow (legacy path)",
    "accounts/social/signup/": "SSO flow (legacy path)",
    "accounts/oidc/(?P<provider_id>[^/]+)/login/": "SSO start",
    "accounts/oidc/(?P<provider_id>[^/]+)/login/callback/": "SSO callback",
    "accounts/saml/(?P<organization_slug>[^/]+)/acs/": "SAML flow (when enabled)",
    "accounts/saml/(?P<organization_slug>[^/]+)/acs/finish/": "SAML flow (when enabled)",
    "accounts/saml/(?P<organization_slug>[^/]+)/sls/": "SAML flow (when enabled)",
    "accounts/saml/(?P<organization_slug>[^/]+)/metadata/": "SAML flow (when enabled)",
    "accounts/saml/(?P<organization_slug>[^/]+)/login/": "SAML flow (when enabled)",
}


def is_public(route: Route) -> bool:
    return route.path in PUBLIC


SIGN_IN_PATHS = ("/accounts/login/", "/admin/login/")


def _refused(client, response, hops: int = 3) -> bool:
    """401/403, or a redirect that ends at sign-in (following same-site hops anonymously)."""
    if response.status_code in (401, 403):
        return True
    if response.status_code not in (301, 302, 303, 307, 308):
        return False
    target = urlsplit(response["Location"])
    if target.path in SIGN_IN_PATHS:
        return True
    if target.netloc or hops == 0:
        return False
    return _refused(client, client.get(response["Location"]), hops - 1)


ROUTES = all_routes()


def test_the_inventory_sees_the_whole_project():
    names = {r.name for r in ROUTES}
    assert {"home", "team-list", "team-detail", "healthz", "readyz", "account_login"} <= names
    assert any(r.path.startswith("admin/") for r in ROUTES)
    assert "teams/<slug:slug>/" in {r.path for r in ROUTES}
    assert len(ROUTES) > 50


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_every_sample_url_resolves_to_its_route(route):
    try:
        match = resolve(route.url)
    except Resolver404:  # pragma: no cover - a sampler bug shows here
        pytest.fail(f"the sample {route.url} of /{route.path} does not resolve")
    assert match.func == route.callback, f"{route.url} resolves to {match.route}, not {route.path}"


def test_every_public_entry_still_names_a_route():
    """A stale allowlist hides nothing, but it also means the list is not read."""
    walked = {r.path for r in ROUTES}
    saml = {k for k in PUBLIC if k.startswith("accounts/saml/")}  # only with SAML_ENABLED
    assert set(PUBLIC) - saml - walked == set()


@pytest.mark.sqlite
@pytest.mark.django_db
@pytest.mark.parametrize("route", [r for r in ROUTES if not is_public(r)], ids=str)
def test_anonymous_is_refused_everywhere_not_public(client, route):
    response = client.get(route.url)
    assert _refused(client, response), (
        f"anonymous GET {route.url} answered {response.status_code} "
        f"{response.get('Location', '')}: add a login check or put it on PUBLIC (with a reason)"
    )
    response = client.post(route.url, {"anything": "1"})
    assert _refused(client, response), (
        f"anonymous POST {route.url} answered {response.status_code} {response.get('Location', '')}"
    )
    if route.url.startswith("/api/"):
        # The middleware lets requests with an Authorization header through to DRF;
        # a made-up token must be refused there.
        bogus = {"Authorization": "Bearer not-a-real-token"}
        for method in (client.get, client.post):
            response = method(route.url, headers=bogus)
            assert response.status_code in (401, 403), (
                f"{method.__name__.upper()} {route.url} with a bogus token answered "
                f"{response.status_code}"
            )


@pytest.mark.django_db
@pytest.mark.parametrize("route", [r for r in ROUTES if is_public(r)], ids=str)
def test_public_routes_answer_anonymous_without_error(client, route):
    response = client.get(route.url)
    assert response.status_code < 500


@pytest.mark.django_db
def test_api_paths_answer_401_problem_json_not_a_redirect(client):
    response = client.get("/api/v1/anything-at-all/")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"] == "https://tollgate.test/problems/not-authenticated"


# --- personas ---------------------------------------------------------------------------
# (persona fixture name, URL builder from the `org` fixture, expected status).
# Another team's object answers 404 (its existence is not leaked), never 403 or 200.

PersonaCase = tuple[str, Callable[[dict], str], int]


def _other_team_person(org):
    from accounts.models import User
    from tests.conftest import make_user

    return User.objects.filter(email="other@example.com").first() or make_user(
        "other@example.com", team=org["other"]
    )


def _other_team_entitlement(org):
    from tests.access.factories import make_entitlement, make_service

    return make_entitlement(make_service(org["other"], slug="other-team-service"))


def _other_team_request(org) -> str:
    from access.models import AccessRequest

    person = _other_team_person(org)
    request = AccessRequest.objects.create(
        requester=person,
        principal=person,
        entitlement=_other_team_entitlement(org),
        justification="needed",
        duration_days=7,
        stages=[
            {
                "name": "Manager",
                "kind": "manager",
                "required": 1,
                "group_id": None,
                "user_ids": [],
                "source": "test",
            }
        ],
    )
    return f"/requests/{request.pk}/"


def _other_team_grant(org) -> str:
    from tests.access.factories import grant_directly

    return f"/grants/{grant_directly(_other_team_person(org), _other_team_entitlement(org)).pk}/"


def _other_team_unused_removal(org) -> str:
    """An unused-access removal of another team's grant (usage app, P4)."""
    from django.utils import timezone

    from tests.usage.support import aged_grant, cover
    from usage.models import UnusedRemoval
    from usage.services import unused_detect

    now = timezone.now()
    entitlement = _other_team_entitlement(org)
    cover(entitlement.service, now=now)
    grant = aged_grant(_other_team_person(org), entitlement, now=now)
    unused_detect(now=now)
    return f"/unused-access/removals/{UnusedRemoval.objects.get(grant=grant).pk}/"


def _standards_violation(org) -> str:
    from tests.standards.support import other_team_violation_url

    return other_team_violation_url(org)


def _other_team_mining_run(org) -> str:
    """A finished role-mining run of another team (patterns app, P2)."""
    from patterns.models import MiningProposal, MiningRun

    run = MiningRun.objects.create(scope="team", team=org["other"], status="done", progress=1)
    MiningProposal.objects.create(run=run, index=1, user_ids=[], entitlement_ids=[], cells=0)
    return f"/patterns/runs/{run.pk}/"


def _payments_run_adopt(org) -> str:
    """The adopt page of a run the payments people may see: admins only (P2)."""
    from patterns.models import MiningProposal, MiningRun

    run = MiningRun.objects.create(scope="team", team=org["payments"], status="done", progress=1)
    MiningProposal.objects.create(run=run, index=1, user_ids=[], entitlement_ids=[], cells=0)
    return f"/patterns/runs/{run.pk}/proposals/1/adopt/"


def _other_team_bundle(org) -> str:
    """Another team's standard bundle (patterns app, P2)."""
    from patterns.models import BundleVersion, StandardBundle

    bundle = StandardBundle.objects.create(team=org["other"], name="Other standard bundle")
    BundleVersion.objects.create(bundle=bundle, number=1, created_by=_other_team_person(org))
    return f"/patterns/bundles/{bundle.pk}/"


PERSONA_CASES: list[PersonaCase] = [
    ("requester", lambda org: "/", 200),
    ("requester", lambda org: "/teams/", 200),
    ("requester", lambda org: f"/teams/{org['payments'].slug}/", 200),
    ("requester", lambda org: f"/teams/{org['other'].slug}/", 404),
    ("requester", lambda org: f"/teams/{org['search'].slug}/", 404),
    ("requester", lambda org: "/teams/no-such-team/", 404),
    ("other_team_user", lambda org: f"/teams/{org['other'].slug}/", 200),
    ("other_team_user", lambda org: f"/teams/{org['payments'].slug}/", 404),
    ("manager", lambda org: f"/teams/{org['payments'].slug}/", 200),
    ("manager", lambda org: f"/teams/{org['other'].slug}/", 404),
    ("auditor", lambda org: f"/teams/{org['other'].slug}/", 200),
    ("admin", lambda org: f"/teams/{org['other'].slug}/", 200),
    # access: another team's request and grant are 404; their holder, security, auditors see them
    ("requester", _other_team_request, 404),
    ("manager", _other_team_request, 404),
    ("service_owner", _other_team_request, 404),
    ("other_team_user", _other_team_request, 200),
    ("security", _other_team_request, 200),
    ("auditor", _other_team_request, 200),
    ("requester", _other_team_grant, 404),
    ("manager", _other_team_grant, 404),
    ("other_team_user", _other_team_grant, 200),
    ("admin", _other_team_grant, 200),
    ("requester", lambda org: "/catalog/", 200),
    ("requester", lambda org: "/approvals/", 200),
    ("requester", lambda org: "/tokens/", 200),
    # SCIM: the clients page is platform admins' only; /scim/v2/ takes SCIM client tokens only
    ("requester", lambda org: "/scim/", 404),
    ("security", lambda org: "/scim/", 404),
    ("admin", lambda org: "/scim/", 200),
    ("admin", lambda org: "/scim/v2/Users", 401),
    ("requester", lambda org: "/scim/v2/ServiceProviderConfig", 401),
    # audit search: auditors, security and admins only
    ("requester", lambda org: "/audit/", 404),
    ("manager", lambda org: "/audit/", 404),
    ("auditor", lambda org: "/audit/", 200),
    ("security", lambda org: "/audit/", 200),
    ("admin", lambda org: "/audit/", 200),
    # costs: a team's dashboard for its people, org pages for finance and admins
    ("requester", lambda org: f"/teams/{org['payments'].slug}/costs/", 200),
    ("requester", lambda org: f"/teams/{org['other'].slug}/costs/", 404),
    ("finance", lambda org: f"/teams/{org['other'].slug}/costs/", 200),
    ("requester", lambda org: "/costs/overview/", 404),
    ("finance", lambda org: "/costs/overview/", 200),
    # standards (P6): admins edit, security/auditors read; violations and scores for owners
    ("requester", lambda org: "/standards/", 404),
    ("auditor", lambda org: "/standards/", 200),
    ("security", lambda org: "/standards/edit/", 403),
    ("requester", lambda org: "/standards/edit/", 404),
    ("admin", lambda org: "/standards/edit/", 200),
    ("requester", lambda org: "/standards/violations/", 200),
    ("requester", _standards_violation, 404),
    ("service_owner", _standards_violation, 404),
    ("other_team_user", _standards_violation, 200),
    ("auditor", _standards_violation, 200),
    ("requester", lambda org: f"/standards/compliance/teams/{org['other'].slug}/", 404),
    ("other_team_user", lambda org: f"/standards/compliance/teams/{org['other'].slug}/", 200),
    # unused access (P4): holders, their managers, owners, security/auditors/admins only
    ("requester", lambda org: "/unused-access/", 200),
    ("requester", _other_team_unused_removal, 404),
    ("manager", _other_team_unused_removal, 404),
    ("service_owner", _other_team_unused_removal, 404),
    ("other_team_user", _other_team_unused_removal, 200),
    ("security", _other_team_unused_removal, 200),
    ("admin", _other_team_unused_removal, 200),
    ("requester", lambda org: "/unused-access/rules/", 404),
    ("security", lambda org: "/unused-access/rules/", 404),
    ("admin", lambda org: "/unused-access/rules/", 200),
    # access patterns (P1-P3): a team's map for its people, leads and managers; services'
    # for their owners; everything for admins, security and auditors
    ("requester", lambda org: "/patterns/", 200),
    ("requester", lambda org: f"/patterns/map/teams/{org['payments'].slug}/", 200),
    ("requester", lambda org: f"/patterns/map/teams/{org['other'].slug}/", 404),
    ("manager", lambda org: f"/patterns/map/teams/{org['other'].slug}/", 404),
    ("finance", lambda org: f"/patterns/map/teams/{org['other'].slug}/", 404),
    ("auditor", lambda org: f"/patterns/map/teams/{org['other'].slug}/", 200),
    ("requester", _other_team_mining_run, 404),
    ("other_team_user", _other_team_mining_run, 200),
    ("security", _other_team_mining_run, 200),
    ("requester", _payments_run_adopt, 403),
    ("security", _payments_run_adopt, 403),
    ("admin", _payments_run_adopt, 200),
    ("requester", _other_team_bundle, 404),
    ("other_team_user", _other_team_bundle, 200),
    ("admin", _other_team_bundle, 200),
    ("requester", lambda org: "/patterns/outliers/", 200),
    ("requester", lambda org: f"/patterns/outliers/?team={org['other'].slug}", 404),
    # recommendations (P5): model status for admins/security/auditors, candidates for admins
    ("requester", lambda org: "/recommendations/", 403),
    ("manager", lambda org: "/recommendations/", 403),
    ("auditor", lambda org: "/recommendations/", 200),
    ("security", lambda org: "/recommendations/", 200),
    ("admin", lambda org: "/recommendations/", 200),
    ("requester", lambda org: "/recommendations/candidates/", 403),
    ("security", lambda org: "/recommendations/candidates/", 403),
    ("admin", lambda org: "/recommendations/candidates/", 200),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("persona", "build_url", "expected"),
    PERSONA_CASES,
    ids=[f"{p}-{i}" for i, (p, _, _) in enumerate(PERSONA_CASES)],
)
def test_persona_sees_only_what_it_may(client, request, org, persona, build_url, expected):
    user = request.getfixturevalue(persona)
    client.force_login(user)
    url = build_url(org)

    response = client.get(url)

    assert response.status_code == expected, f"{persona} GET {url}"


@pytest.mark.django_db
def test_cross_team_page_leaks_nothing(client, requester, org):
    client.force_login(requester)
    other = org["other"]

    response = client.get(f"/teams/{other.slug}/")

    assert response.status_code == 404
    assert other.name.encode() not in response.content


SIGNED_IN_WALKERS = ["requester", "admin"]


@pytest.mark.django_db
@pytest.mark.parametrize("persona", SIGNED_IN_WALKERS)
def test_signed_in_walk_never_errors(client, request, persona):
    """Every route, fetched with a sample URL by a signed-in persona, answers without a 5xx."""
    client.force_login(request.getfixturevalue(persona))
    failures = []
    for route in ROUTES:
        if route.path == "accounts/logout/":
            continue  # GET only shows a confirmation; skipped to keep the session
        response = client.get(route.url)
        if response.status_code >= 500:
            failures.append(f"{route} -> {response.status_code}")
    assert failures == []
