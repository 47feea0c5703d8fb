"""The check API names a principal in one canonical form: a user id as ASCII digits without
leading zeros, or an e-mail address, lower-cased. Anything else is a 400 naming the field,
on the hot path and on the DRF path alike, so no answer is cached under a key that a
revocation does not bump."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from access import check_api
from access.models import Grant
from access.services import grant_revoke
from tests.access.factories import grant_directly

from .test_check_api import BATCH, CHECK, body, service_api
from .test_check_fast_path import _both_paths


@pytest.fixture(autouse=True)
def _clean_check_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def drf_calls(monkeypatch):
    calls = []
    original = check_api.CheckView.post

    def spy(self, request):
        calls.append(request)
        return original(self, request)

    monkeypatch.setattr(check_api.CheckView, "post", spy)
    return calls


def _refused(response) -> dict:
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    data = response.json()
    assert data["field"] == "principal"
    return data


@pytest.mark.parametrize(
    "principal",
    [
        "007",  # leading zeros: a cache key no revocation bumps
        "0",
        "²",  # a Unicode digit: str.isdigit() says yes, int() a 500
        "١٢",  # Arabic-Indic digits
        "1" * 19,  # past the database's bigint
        "bob",  # neither an id nor an e-mail
        "a@b@c",
        "ré@example.com",  # e-mails are printable ASCII
        "x" * 250 + "@example.com",  # over 254 characters
    ],
)
def test_a_non_canonical_principal_is_400_naming_it(catalog, requester, principal, drf_calls):
    grant_directly(requester, catalog["read"])
    api = service_api(catalog["search_db"])
    data = _refused(api.post(CHECK, body(principal)))
    assert len(drf_calls) == 1, "the hot path leaves the refusal to DRF"
    assert data["errors"]["principal"]
    batch = api.post(BATCH, {"checks": [body(requester.email), body(principal)]})
    assert batch.status_code == 400
    assert "principal" in str(batch.json()["errors"])


def test_a_padded_id_cannot_read_a_stale_answer_after_revocation(
    catalog, requester, django_capture_on_commit_callbacks
):
    grant = grant_directly(requester, catalog["read"])
    api = service_api(catalog["search_db"])
    padded = f"00{requester.pk}"
    assert api.post(CHECK, body(str(requester.pk))).json()["allowed"] is True
    _refused(api.post(CHECK, body(padded)))
    with django_capture_on_commit_callbacks(execute=True):  # the cache bump runs on commit
        grant_revoke(actor=requester, grant_id=grant.pk, reason="given up")
    assert Grant.objects.get(pk=grant.pk).status == Grant.Status.REVOKED
    assert api.post(CHECK, body(str(requester.pk))).json()["allowed"] is False
    _refused(api.post(CHECK, body(padded)))


def test_an_e_mail_is_compared_lower_cased_on_both_paths(monkeypatch, catalog, requester):
    grant_directly(requester, catalog["read"])
    api = service_api(catalog["search_db"])
    shouting = requester.email.upper()
    fast, slow = _both_paths(monkeypatch, api, body(shouting))
    assert fast.status_code == slow.status_code == 200
    assert fast.content == slow.content
    assert fast.json()["allowed"] is True
    unknown = "NOBODY@Example.COM"
    fast, slow = _both_paths(monkeypatch, api, body(unknown))
    assert fast.content == slow.content
    assert fast.json()["reason"] == "unknown principal: 'nobody@example.com'"
    results = api.post(BATCH, {"checks": [body(shouting)]}).json()["results"]
    assert [(r["principal"], r["allowed"]) for r in results] == [(requester.email, True)]


@pytest.mark.parametrize("field", ["service", "entitlement"])
def test_slugs_are_bounded(catalog, requester, field):
    api = service_api(catalog["search_db"], scope_all=True)
    response = api.post(CHECK, {**body(requester.email), field: "s" * 81})
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert api.post(CHECK, {**body(requester.email), field: "s" * 80}).status_code == 200
