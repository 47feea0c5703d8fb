"""The published JSON Schemas are valid Draft 2020-12 schemas, written beside an export and
named by each file's first line; the plan's JSON form carries the same hash and changes."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from gitops.services import config_export, config_plan, plan_as_json
from gitops.tree import SCHEMA_DIR


def test_every_published_schema_is_a_valid_draft_2020_12_schema():
    names = sorted(p.name for p in SCHEMA_DIR.glob("*.schema.json"))
    assert names == [
        "attribution_rules.schema.json",
        "budgets.schema.json",
        "bundles.schema.json",
        "notification_routes.schema.json",
        "policies.schema.json",
        "review_templates.schema.json",
        "service.schema.json",
        "toxic_pairs.schema.json",
    ]
    for name in names:
        Draft202012Validator.check_schema(json.loads((SCHEMA_DIR / name).read_text()))


@pytest.mark.django_db
def test_export_writes_the_schemas_and_points_each_file_at_its_schema(base_tree, repo, tmp_path):
    from gitops.services import config_apply

    plan = config_plan(root=base_tree.root)
    config_apply(actor=repo, root=base_tree.root, plan_hash=plan.hash)
    out = tmp_path / "export"
    config_export(root=out)
    assert (out / ".schemas" / "service.schema.json").read_text() == (
        SCHEMA_DIR / "service.schema.json"
    ).read_text()
    first = (out / "services" / "billing-db.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../.schemas/service.schema.json"
    assert (
        (out / "policies.yaml")
        .read_text()
        .startswith("# yaml-language-server: $schema=.schemas/policies.schema.json\n")
    )


@pytest.mark.django_db
def test_plan_as_json(base_tree):
    plan = config_plan(root=base_tree.root)
    data = json.loads(plan_as_json(plan))
    assert data["hash"] == plan.hash
    assert data["counts"] == {"create": 6, "update": 0, "delete": 0}
    first = data["changes"][0]
    assert first["op"] == "create" and first["source"].startswith("policies.yaml:")
