"""The standards document: validation with line and reason, round trip, diff preview, versions."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEvent
from standards.document import PolicyDocumentError, dump, parse
from standards.models import PolicyVersion, Standard
from standards.selectors import current_rules
from standards.services import standards_apply, standards_diff, standards_preview
from tests.access.factories import grant_directly, make_entitlement, make_service

from .support import apply, doc, standard

pytestmark = pytest.mark.django_db

VALID = doc(
    """
    - id: tier0-admin-security
      title: Tier-0 admin needs security
      severity: critical
      owner: service-owner
      scope:
        tier: [0]
        risk: [critical]
      check:
        kind: requires_stage
        stage: security
    - id: short-admin
      title: Admin at most 7 days
      description: Short-lived admin access.
      severity: high
      owner: platform
      scope: {tier: 0, worker_type: contractor}
      check: {kind: max_duration_days, days: 7}
    - id: two-owners
      title: Two owners
      severity: medium
      owner: service-owner
      check: {kind: min_service_owners, min: 2}
    - id: sod
      title: Maker checker
      severity: critical
      owner: service-owner
      check:
        kind: sod_pairs
        pairs:
          - [ledger/create, ledger/approve]
    """
)


@pytest.fixture
def catalog(org):
    ledger = make_service(org["payments"], slug="ledger", tier=0)
    return {
        "ledger": ledger,
        "create": make_entitlement(ledger, "create", risk="high"),
        "approve": make_entitlement(ledger, "approve", risk="high"),
    }


def problems_of(text: str) -> list:
    with pytest.raises(PolicyDocumentError) as info:
        parse(text)
    return info.value.problems


def state() -> tuple:
    return (
        PolicyVersion.objects.count(),
        list(Standard.objects.values_list("key", "active", "params")),
        AuditEvent.objects.count(),
    )


@pytest.mark.sqlite
def test_valid_document_is_normalised(catalog):
    rules = parse(VALID)
    assert [r.key for r in rules] == ["tier0-admin-security", "short-admin", "two-owners", "sod"]
    assert rules[1].scope == {"tier": [0], "worker_type": ["contractor"]}
    assert rules[1].params == {"days": 7}
    assert rules[3].params == {"pairs": [["ledger/approve", "ledger/create"]]}


@pytest.mark.sqlite
@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        # a syntax error carries the parser's mark
        ("- id: a\n  title: [unclosed\n  severity: low\n", 3, "YAML syntax error"),
        # unknown kind
        (
            "- id: a\n  title: A\n  severity: low\n  owner: platform\n  check:\n    kind: frobnicate\n",
            6,
            "unknown kind 'frobnicate'",
        ),
        # missing field: reported on the standard's first line, naming the field
        (
            "- id: first\n  title: A\n  severity: low\n  owner: platform\n  check: {kind: min_service_owners, min: 2}\n"
            "- id: b\n  severity: low\n  owner: platform\n  check: {kind: min_service_owners, min: 2}\n",
            6,
            "standard #2 (b), field title: missing required field",
        ),
        # wrong type
        (
            "- id: a\n  title: A\n  severity: low\n  owner: platform\n  check:\n    kind: max_duration_days\n    days: seven\n",
            7,
            "field check.days: must be a whole number from 1 to 3650, not 'seven'",
        ),
        # booleans are not numbers
        (
            "- id: a\n  title: A\n  severity: low\n  owner: platform\n  check: {kind: max_duration_days, days: true}\n",
            5,
            "must be a whole number",
        ),
        # a selector that does not apply to the kind
        (
            "- id: a\n  title: A\n  severity: low\n  owner: platform\n  scope:\n    worker_type: contractor\n"
            "  check: {kind: min_service_owners, min: 2}\n",
            6,
            "does not apply to min_service_owners",
        ),
        # unknown field
        (
            "- id: a\n  title: A\n  severity: loud\n  owner: platform\n  colour: red\n  check: {kind: min_service_owners, min: 2}\n",
            5,
            "field colour: unknown field",
        ),
        # duplicate key inside a mapping (PyYAML would silently keep the last)
        (
            "- id: a\n  title: A\n  title: B\n  severity: low\n  owner: platform\n  check: {kind: min_service_owners, min: 2}\n",
            3,
            "key 'title' appears twice",
        ),
        # unknown team and entitlement references
        (
            "- id: a\n  title: A\n  severity: low\n  owner: no-such-team\n  check: {kind: min_service_owners, min: 2}\n",
            4,
            "no team with slug 'no-such-team'",
        ),
        (
            "- id: a\n  title: A\n  severity: low\n  owner: platform\n  check:\n    kind: sod_pairs\n    pairs:\n"
            "      - [ledger/create, ledger/approve]\n      - [ledger/create, ledger/nope]\n",
            9,
            "no such entitlement: ledger/nope",
        ),
        ("just: a mapping\n", 1, "must be a list of standards"),
    ],
)
def test_bad_document_is_refused_with_line_and_reason(catalog, admin, text, line, reason):
    before = state()
    problems = problems_of(text)
    assert any(p.line == line and reason in str(p) for p in problems), [str(p) for p in problems]
    with pytest.raises(PolicyDocumentError):
        standards_apply(actor=admin, text=text, check_base=False)
    assert state() == before


@pytest.mark.sqlite
def test_duplicate_ids_name_both(catalog):
    text = VALID + doc(
        """
        - id: sod
          title: Again
          severity: low
          owner: platform
          check: {kind: min_service_owners, min: 3}
        """
    )
    problems = problems_of(text)
    assert [str(p) for p in problems] == [
        "line 31: standard #5 (sod), field id: id 'sod' is used twice (first by standard #4)"
    ]


@pytest.mark.sqlite
def test_export_then_import_is_a_no_op(catalog, admin):
    version = apply(admin, VALID)
    exported = dump(current_rules(), version=version.number)
    diff = standards_diff(rules=parse(exported))
    assert diff.is_empty and diff.unchanged == 4
    again, _ = standards_apply(actor=admin, text=exported, check_base=False)
    assert again is None
    assert PolicyVersion.objects.count() == 1


def test_apply_stores_version_and_audits(catalog, admin):
    version = apply(admin, VALID)
    assert version.number == 1
    assert version.yaml_text == VALID
    assert version.author == admin and version.author_label == admin.email
    event = AuditEvent.objects.get(action="standards.version_applied")
    assert event.after["version"] == 1
    assert event.after["added"] == ["tier0-admin-security", "short-admin", "two-owners", "sod"]
    assert list(Standard.objects.filter(active=True).values_list("key", flat=True)) == [
        "tier0-admin-security",
        "short-admin",
        "two-owners",
        "sod",
    ]


def test_diff_preview_counts_new_violations(catalog, admin, requester):
    apply(admin, VALID)
    grant_directly(requester, catalog["create"])
    grant_directly(requester, catalog["approve"])
    no_end = grant_directly(requester, make_entitlement(catalog["ledger"], "root", risk="critical"))
    no_end.ends_at = None
    no_end.save()
    # Change two-owners, drop short-admin, add an end-date rule; sod and tier0 stay.
    lines = VALID.split("- id: ")
    proposed = (
        "- id: "
        + lines[1]
        + "- id: "
        + lines[3].replace("min: 2", "min: 3")
        + "- id: "
        + lines[4]
        + standard("end-date", "end_date_required_above_risk", risk="medium")
    )
    before = state()
    diff = standards_preview(actor=admin, text=proposed)
    assert [c.key for c in diff.added] == ["end-date"]
    assert [(c.key, c.fields) for c in diff.changed] == [("two-owners", ["params"])]
    assert [c.key for c in diff.removed] == ["short-admin"]
    assert diff.unchanged == 2
    # end-date: the critical grant without an end; two-owners: ledger's team has 1 lead (no scan
    # yet, so nothing is open and the service is new to it).
    assert {c.key: c.new_violations for c in diff.added + diff.changed} == {
        "end-date": 1,
        "two-owners": 1,
    }
    assert state() == before  # a preview writes nothing


def test_apply_refuses_a_stale_preview(catalog, admin):
    apply(admin, VALID)
    from portal.core.errors import Conflict

    with pytest.raises(Conflict, match="changed since your preview"):
        standards_apply(actor=admin, text=VALID.replace("min: 2", "min: 3"), base_version=None)
    assert PolicyVersion.objects.count() == 1


def test_only_admins_apply(catalog, security):
    from portal.core.errors import NotPermitted

    with pytest.raises(NotPermitted):
        standards_apply(actor=security, text=VALID, check_base=False)
    assert PolicyVersion.objects.count() == 0


def test_removed_standard_is_deactivated_and_returns(catalog, admin):
    apply(admin, VALID)
    only_two = "- id: " + "- id: ".join(VALID.split("- id: ")[3:5])
    v2 = apply(admin, only_two)
    assert v2.number == 2
    assert set(Standard.objects.filter(active=True).values_list("key", flat=True)) == {
        "two-owners",
        "sod",
    }
    v3 = apply(admin, VALID)
    assert Standard.objects.get(key="short-admin").version == v3
    assert Standard.objects.get(key="sod").version.number == 1  # unchanged since v1


def test_import_and_export_commands(catalog, admin, tmp_path):
    path = tmp_path / "standards.yaml"
    path.write_text(VALID)
    out = io.StringIO()
    call_command("standards_import", str(path), "--dry-run", stdout=out)
    assert "4 added, 0 changed, 0 removed" in out.getvalue()
    assert "dry run: nothing applied" in out.getvalue()
    assert PolicyVersion.objects.count() == 0
    out = io.StringIO()
    call_command("standards_import", str(path), "--actor", admin.email, stdout=out)
    assert "applied as version 1" in out.getvalue()
    exported = tmp_path / "export.yaml"
    call_command("standards_export", "--output", str(exported), stdout=io.StringIO())
    out = io.StringIO()
    call_command("standards_import", str(exported), stdout=out)
    assert "no changes: nothing applied" in out.getvalue()
    assert PolicyVersion.objects.count() == 1


def test_import_command_refuses_bad_yaml_with_line(catalog, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "- id: a\n  title: A\n  severity: low\n  owner: platform\n  check: {kind: nope}\n"
    )
    err = io.StringIO()
    with pytest.raises(CommandError, match="refused"):
        call_command("standards_import", str(path), stderr=err)
    assert "line 5" in err.getvalue() and "unknown kind 'nope'" in err.getvalue()
    assert PolicyVersion.objects.count() == 0


def test_default_document_is_valid_against_the_demo_vocabulary():
    from demo.steps.standards import DEFAULT_FILE

    rules = parse(DEFAULT_FILE.read_text(), check_references=False)
    assert {r.kind for r in rules} == {
        "requires_stage",
        "max_duration_days",
        "no_standing_access",
        "end_date_required_above_risk",
        "min_service_owners",
        "entitlement_has_owner_and_cost",
        "sod_pairs",
    }
