"""List endpoints run a bounded number of queries, whatever the page holds."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from access import services
from access.models import Grant
from tests.access.factories import make_entitlement
from tests.conftest import make_user

from .conftest import token_api

pytestmark = pytest.mark.django_db


def _queries(api, path) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = api.get(path)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def _add(org, manager, catalog, n: int, offset: int) -> None:
    for i in range(offset, offset + n):
        person = make_user(f"p{i}@example.com", team=org["payments"], manager=manager)
        ent = make_entitlement(catalog["search_db"], slug=f"e{i}")
        req = services.access_request_submit(
            actor=person, principal=person, entitlement=ent, justification="x", duration_days=3
        )
        if i % 2:
            services.access_request_approve(actor=manager, request_id=req.pk)


@pytest.mark.parametrize(
    "path", ["/api/v1/requests/", "/api/v1/approvals/", "/api/v1/grants/", "/api/v1/entitlements/"]
)
def test_list_queries_do_not_grow_with_the_page(org, manager, catalog, path):
    api = token_api(manager)
    api.get("/api/v1/me")  # stamps last_used_at now, so neither measurement pays for it
    _add(org, manager, catalog, 2, 0)
    small = _queries(api, path)
    _add(org, manager, catalog, 10, 2)
    assert Grant.objects.count() == 6
    large = _queries(api, path)
    assert large == small
    assert large <= 12
