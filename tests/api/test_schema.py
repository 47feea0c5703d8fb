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
    assert set(create["responses"]) == {"201", "400", "401", "403", "409", "429"}
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


PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method != "parameters":
                yield path, method, operation


def test_every_operation_documents_its_problem_answers():
    """401 and 403 everywhere, 400 with a body or a query, 404 with a path parameter, 429
    where throttled (every operation but the check API's), each as problem+json."""
    schema = yaml.safe_load(COMMITTED.read_text())
    problem = schema["components"]["schemas"]["Problem"]
    assert {"type", "title", "status"} <= set(problem["required"])
    assert {"detail", "field", "errors"} <= set(problem["properties"])
    for path, method, operation in _operations(schema):
        responses = operation["responses"]
        expected = {"401", "403"}
        if method == "post" or any(p["in"] == "query" for p in operation.get("parameters", [])):
            expected.add("400")
        if "{" in path:
            expected.add("404")
        if not path.startswith("/api/v1/check"):
            expected.add("429")
        assert expected <= set(responses), (path, method, sorted(responses))
        for status in expected:
            content = responses[status]["content"]
            assert content == {"application/problem+json": {"schema": PROBLEM_REF}}, (
                path,
                method,
                status,
            )
        if "429" in responses:
            assert "Retry-After" in responses["429"]["headers"], (path, method)
        else:
            assert path.startswith("/api/v1/check"), (path, method)


def test_list_operations_document_the_limit_cap():
    schema = yaml.safe_load(COMMITTED.read_text())
    lists = 0
    for path, _method, operation in _operations(schema):
        params = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "query"}
        if "limit" not in params:
            continue
        lists += 1
        assert params["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 500}
        assert "400" in params["limit"]["description"], path
        assert params["offset"]["schema"]["maximum"] == 1_000_000
    assert lists >= 8
