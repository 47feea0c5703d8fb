"""The committed OpenAPI schema matches the code, and is served to signed-in callers."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import call_command
from django.test import Client

from .conftest import token_api

COMMITTED = Path(settings.BASE_DIR) / "docs" / "openapi.yaml"


@pytest.mark.sqlite
def test_committed_schema_has_no_drift(tmp_path):
    generated = tmp_path / "openapi.yaml"
    call_command("spectacular", "--file", str(generated), "--validate")
    assert COMMITTED.exists(), "docs/openapi.yaml is missing: run `make schema`"
    assert generated.read_text() == COMMITTED.read_text(), (
        "docs/openapi.yaml is out of date with the API code: run `make schema` and commit it"
    )


def test_committed_schema_documents_the_contract():
    schema = yaml.safe_load(COMMITTED.read_text())
    paths = schema["paths"]
    expected = {
        "/api/v1/me": {"get"},
        "/api/v1/services/": {"get"},
        "/api/v1/services/{slug}": {"get"},
        "/api/v1/entitlements/": {"get"},
        "/api/v1/requests/": {"get", "post"},
        "/api/v1/requests/{id}": {"get"},
        "/api/v1/requests/{id}/approve": {"post"},
        "/api/v1/requests/{id}/deny": {"post"},
        "/api/v1/requests/{id}/cancel": {"post"},
        "/api/v1/approvals/": {"get"},
        "/api/v1/grants/": {"get"},
        "/api/v1/grants/{id}/revoke": {"post"},
    }
    for path, methods in expected.items():
        assert path in paths, path
        assert set(paths[path]) - {"parameters"} == methods, path
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    create = paths["/api/v1/requests/"]["post"]
    assert set(create["responses"]) == {"201", "400", "401", "403", "409"}
    assert "application/problem+json" in create["responses"]["409"]["content"]
    request_in = schema["components"]["schemas"]["AccessRequestIn"]
    assert set(request_in["properties"]) == {
        "entitlement",
        "justification",
        "duration_days",
        "principal",
    }


@pytest.mark.django_db
def test_schema_is_served_to_signed_in_callers_only(requester):
    assert Client().get("/api/v1/schema").status_code == 401
    response = token_api(requester).get("/api/v1/schema")
    assert response.status_code == 200
    assert yaml.safe_load(response.content)["info"]["title"] == "Tollgate API"
