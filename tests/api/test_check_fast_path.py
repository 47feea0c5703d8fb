"""The check API's hot path (access.check_api.fast_check) answers exactly as the DRF view.

The fast path skips DRF for well-formed single checks from live service tokens; every
other request falls through to DRF. These tests pin both halves: the same bytes for the
same question, and every irregular request handled by DRF (so errors keep one shape).
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from access import check, check_api
from access.models import Grant
from tests.access.factories import grant_directly
from tests.api.test_check_api import CHECK, body, service_api


@pytest.fixture(autouse=True)
def _clean_check_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def drf_calls(monkeypatch):
    """Count requests the DRF view (not the fast path) answered."""
    calls = []
    original = check_api.CheckView.post

    def spy(self, request):
        calls.append(request)
        return original(self, request)

    monkeypatch.setattr(check_api.CheckView, "post", spy)
    return calls


def _both_paths(monkeypatch, api, payload):
    fast = api.post(CHECK, payload)
    with monkeypatch.context() as m:
        m.setattr(check_api, "fast_check", lambda request: None)
        cache.clear()  # the DRF answer is computed afresh, not read from the fast one
        slow = api.post(CHECK, payload)
    return fast, slow


@pytest.mark.sqlite
def test_fast_and_drf_answers_are_byte_identical(monkeypatch, catalog, requester, drf_calls):
    api = service_api(catalog["search_db"])
    grant = grant_directly(requester, catalog["read"], days=10)
    expired = grant_directly(requester, catalog["admin"])
    Grant.objects.filter(pk=expired.pk).update(ends_at=timezone.now() - timedelta(seconds=5))
    questions = [
        body(requester.email),  # allowed, with an expiry
        body(str(requester.pk)),  # by id
        body(requester.email, entitlement="admin"),  # expired
        body("nobody@example.com"),  # unknown principal
        body(requester.email, entitlement="no-such"),  # unknown entitlement
        {**body(requester.email), "extra": "ignored"},  # unknown keys are ignored by both
    ]
    for payload in questions:
        drf_calls.clear()
        fast, slow = _both_paths(monkeypatch, api, payload)
        assert len(drf_calls) == 1, "only the forced request went through DRF"
        assert fast.status_code == slow.status_code == 200
        assert fast.content == slow.content, payload
        assert fast["Content-Type"] == slow["Content-Type"] == "application/json"
    first = api.post(CHECK, body(requester.email)).json()
    assert first["grant"] == grant.pk and first["allowed"] is True


@pytest.mark.parametrize(
    "payload",
    [
        {"principal": "a b@example.com", "service": "search-db", "entitlement": "read"},
        {"principal": " requester@example.com", "service": "search-db", "entitlement": "read"},
        {"principal": "", "service": "search-db", "entitlement": "read"},
        {"principal": 12, "service": "search-db", "entitlement": "read"},
        {"principal": "requester@example.com", "service": "search db", "entitlement": "read"},
        {"principal": "requester@example.com", "service": "search-db"},
        {"principal": "requester@example.com", "service": "search-db", "entitlement": "x" * 81},
        [1, 2],
    ],
)
def test_irregular_input_falls_through_to_drf(catalog, payload, drf_calls):
    api = service_api(catalog["search_db"])
    response = api.post(CHECK, payload)
    assert len(drf_calls) == 1
    if response.status_code == 400:
        assert response["Content-Type"] == "application/problem+json"
    else:  # DRF trims whitespace around the principal and reads a number as an id
        assert response.status_code == 200
        assert isinstance(payload["principal"], int) or payload["principal"].startswith(" ")


def test_refusals_are_drf_answers(catalog, requester, drf_calls, client):
    api = service_api(catalog["search_db"])
    wrong_service = api.post(CHECK, body(requester.email, service="payments-api"))
    assert wrong_service.status_code == 403
    assert "payments-api" in wrong_service.json()["detail"]
    bad_token = client.post(
        CHECK,
        json.dumps(body(requester.email)),
        content_type="application/json",
        headers={"Authorization": "Bearer tg_not-a-token"},
    )
    assert bad_token.status_code == 401
    assert bad_token["Content-Type"] == "application/problem+json"
    not_json = client.post(
        CHECK,
        "principal=x",
        content_type="application/x-www-form-urlencoded",
        headers=api.headers,
    )
    assert not_json.status_code in (400, 415)
    broken = client.post(CHECK, "{", content_type="application/json", headers=api.headers)
    assert broken.status_code == 400 and broken["Content-Type"] == "application/problem+json"
    assert len(drf_calls) >= 3


def test_fast_path_sees_a_revocation_at_once(
    catalog, requester, admin, drf_calls, django_capture_on_commit_callbacks
):
    from access.services import grant_revoke

    api = service_api(catalog["search_db"])
    grant = grant_directly(requester, catalog["read"], days=10)
    assert api.post(CHECK, body(requester.email)).json()["allowed"] is True
    assert api.post(CHECK, body(requester.email)).json()["allowed"] is True  # from the cache
    with django_capture_on_commit_callbacks(execute=True):
        grant_revoke(actor=admin, grant_id=grant.pk, reason="test")
    after = api.post(CHECK, body(requester.email)).json()
    assert after["allowed"] is False
    assert drf_calls == []  # all three went through the fast path
    assert check.STATS["hits"] >= 1


def test_answer_ttls_are_spread_around_the_setting(settings):
    settings.CHECK_CACHE_TTL = 300
    ttls = {check._ttl() for _ in range(200)}
    assert min(ttls) >= 240 and max(ttls) <= 360
    assert len(ttls) > 20  # spread, so a warmed working set does not expire in one burst
