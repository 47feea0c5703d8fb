"""The CloudTrail-style importer on the samples in tests/data/usage-logs/ (see PROVENANCE.md):
a Records document, JSON lines, concatenated objects, gzip, and a malformed file."""

from __future__ import annotations

import gzip
import json
import tracemalloc
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from access.models import Grant
from audit.models import AuditEvent
from portal.core.actors import TEST
from portal.core.errors import ValidationError
from tests.access.factories import grant_directly, make_entitlement, make_service
from tests.conftest import make_user
from usage import cloudtrail, services, tasks
from usage.models import PrincipalAlias, UsageCoverage, UsageImport, UsageMappingRule

pytestmark = pytest.mark.django_db
DATA = Path(__file__).resolve().parents[1] / "data" / "usage-logs"
SECRETS = DATA / "aws.credential-access.secretsmanager-retrieve-secrets.json"
TRAIL = DATA / "aws.defense-evasion.cloudtrail-delete.json"
SNAPSHOT = DATA / "aws.exfiltration.ec2-share-ebs-snapshot.json"
MALFORMED = DATA / "aws.execution.ec2-user-data.json"
ARN = "arn:aws:sts::677301038893:assumed-role/account-admin/christophe.tafanidereeper"
LAST_SECRET_READ = datetime(2022, 7, 20, 20, 57, 17, tzinfo=UTC)


@pytest.fixture
def person(org):
    return make_user("christophe@example.com", team=org["payments"])


@pytest.fixture
def aws(org):
    return make_service(org["platform"], "aws-prod")


@pytest.fixture
def mapped(aws, person):
    """secretsmanager Get* → secrets-read; ec2 Modify* → ec2-admin; the person is aliased."""
    read = make_entitlement(aws, "secrets-read")
    ec2 = make_entitlement(aws, "ec2-admin")
    for src, name, ent in (
        ("secretsmanager.amazonaws.com", "Get*", read),
        ("ec2.amazonaws.com", "Modify*", ec2),
    ):
        UsageMappingRule.objects.create(event_source=src, event_name=name, entitlement=ent)
    PrincipalAlias.objects.create(external_id=ARN, user=person)
    return {"read": read, "ec2": ec2}


def run(data: bytes, name: str = "file.json", source: str = "aws-prod") -> UsageImport:
    return services.usage_import_events(actor=TEST, source_slug=source, data=data, file_name=name)


def test_parse_records_document():
    events = cloudtrail.parse(SECRETS.read_bytes())
    assert len(events) == 10
    assert {e.action for e in events} == {"secretsmanager.amazonaws.com:GetSecretValue"}
    assert events[0].identities[:2] == (ARN, "christophe.tafanidereeper")
    assert max(e.event_time for e in events) == LAST_SECRET_READ


def test_parse_concatenated_objects_and_json_lines():
    docs = [json.loads(p.read_text()) for p in (SECRETS, TRAIL, SNAPSHOT)]
    concatenated = "".join(json.dumps(d, indent=2) for d in docs).encode()  # "}{" joins
    assert len(cloudtrail.parse(concatenated)) == 12
    lines = "\n".join(json.dumps(r) for d in docs for r in d["Records"]).encode()
    assert len(cloudtrail.parse(lines)) == 12
    assert len(cloudtrail.parse(gzip.compress(lines))) == 12


def test_import_records_latest_use_per_grant(mapped, person):
    grant = grant_directly(person, mapped["read"])
    record = run(SECRETS.read_bytes(), "secrets.json")
    grant.refresh_from_db()
    assert grant.last_used_at == LAST_SECRET_READ
    assert (record.events, record.matched_events, record.grants_used, record.grants_moved) == (
        10,
        10,
        1,
        1,
    )
    assert (record.unknown_principals, record.unknown_actions) == (0, 0)
    event = AuditEvent.objects.get(action="usage.imported")
    assert event.after["grants_moved"] == 1
    # importing it again moves nothing back or forward
    assert run(SECRETS.read_bytes(), "secrets.json").grants_moved == 0


def test_concatenated_file_import_counts_unknown_actions(mapped, person):
    grant_directly(person, mapped["read"])
    ec2_grant = grant_directly(person, mapped["ec2"])
    docs = [json.loads(p.read_text()) for p in (SECRETS, TRAIL, SNAPSHOT)]
    data = "".join(json.dumps(d) for d in docs).encode()
    record = run(data, "concatenated.json")
    assert record.events == 12
    assert record.grants_used == 2
    assert record.unknown_actions == 1  # cloudtrail DeleteTrail has no rule
    assert record.report["unknown_actions"] == {"cloudtrail.amazonaws.com:DeleteTrail": 1}
    ec2_grant.refresh_from_db()
    assert ec2_grant.last_used_at == datetime(2022, 7, 20, 21, 6, 11, tzinfo=UTC)


def test_unknown_principal_is_counted_not_fatal(aws, mapped, person):
    PrincipalAlias.objects.all().delete()
    grant = grant_directly(person, mapped["read"])
    record = run(SECRETS.read_bytes())
    assert (record.unknown_principals, record.matched_events) == (10, 0)
    assert record.report["unknown_principals"] == {ARN: 10}
    grant.refresh_from_db()
    assert grant.last_used_at is None


def test_email_like_session_names_map_without_alias(aws, org):
    ann = make_user("ann.lee@example.com", team=org["payments"])
    read = make_entitlement(aws, "s3-read")
    UsageMappingRule.objects.create(
        event_source="s3.amazonaws.com", event_name="Get*", entitlement=read
    )
    grant = grant_directly(ann, read)
    when = timezone.now() - timedelta(days=1)
    event = {
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "userIdentity": {"arn": "arn:aws:sts::1:assumed-role/Dev/Ann.Lee@example.com"},
    }
    put = {**event, "eventName": "PutObject"}
    record = run((json.dumps(event) + "\n" + json.dumps(put) + "\n").encode(), "lines.jsonl")
    grant.refresh_from_db()
    assert grant.last_used_at == when.replace(microsecond=0)
    assert (record.grants_used, record.unknown_actions) == (1, 1)


def test_use_of_access_not_held_is_counted(mapped, person):
    record = run(SECRETS.read_bytes())
    assert (record.grants_used, record.not_held) == (0, 1)


def test_malformed_file_is_refused_with_line_and_nothing_stored(mapped, person):
    grant = grant_directly(person, mapped["read"])
    events = AuditEvent.objects.count()
    with pytest.raises(ValidationError) as exc:
        run(MALFORMED.read_bytes(), "ec2-user-data.json")
    assert exc.value.message == (
        "ec2-user-data.json: line 112, column 1 (offset 3327): invalid JSON: Expecting ',' delimiter"
    )
    assert UsageImport.objects.count() == 0
    assert AuditEvent.objects.count() == events
    grant.refresh_from_db()
    assert grant.last_used_at is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"Records": {}}', 'line 1, column 1 (offset 0): "Records" is not a list'),
        (
            b'{"Records": []}\n{"eventName": "GetObject", "eventTime": "2024-01-01T00:00:00Z"}',
            "line 2, column 1 (offset 16): the event has no eventSource",
        ),
        (
            b'{"eventSource": "s3", "eventName": "Get", "eventTime": "yesterday"}',
            "the event has no valid eventTime (ISO 8601 with a time zone): 'yesterday'",
        ),
        (b"\xff\xfe{}", "not UTF-8 text"),
        (b"[1, 2]", "the event is not a JSON object"),
        (b'{"Records": [1]}', "record 1 of the object is not a JSON object"),
    ],
)
@pytest.mark.sqlite
def test_bad_input_names_where_and_why(mapped, data, message):
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run(data, "bad.json")
    assert UsageImport.objects.count() == 0


def test_a_valid_file_after_a_bad_record_stores_nothing(mapped, person):
    """One bad event anywhere refuses the whole file (nothing partial)."""
    grant = grant_directly(person, mapped["read"])
    good = SECRETS.read_text()
    bad = '{"eventSource": "x", "eventName": "y"}'
    with pytest.raises(ValidationError, match="line 845"):
        run((good + "\n" + bad).encode())
    grant.refresh_from_db()
    assert grant.last_used_at is None


def test_import_marks_coverage_up_to_the_last_event(mapped, aws):
    run(SECRETS.read_bytes())
    row = UsageCoverage.objects.get(service=aws, source__slug="aws-prod")
    assert row.covered_since == datetime(2022, 7, 20, 20, 57, 15, tzinfo=UTC)
    assert row.last_success_at == LAST_SECRET_READ  # 2022 data: stale today, so decides nothing


def test_import_cancels_scheduled_removal_of_a_grant_used_again(mapped, person, aws):
    from usage.models import UnusedRemoval

    now = timezone.now()
    grant = grant_directly(person, mapped["read"])
    Grant.objects.filter(pk=grant.pk).update(starts_at=now - timedelta(days=200))
    services.coverage_mark(
        source=services.source_for_events("aws-prod"),
        service_ids=[aws.pk],
        covered_since=now - timedelta(days=300),
        complete_until=now,
        attempt_at=now,
    )
    services.unused_daily(now=now)
    removal = UnusedRemoval.objects.get(grant=grant)
    assert removal.status == "scheduled"
    doc = json.loads(SECRETS.read_text())
    for r in doc["Records"]:
        r["eventTime"] = (now - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    run(json.dumps(doc).encode())
    removal.refresh_from_db()
    assert removal.status == "cancelled"


def test_source_name_must_be_a_slug(mapped):
    with pytest.raises(ValidationError, match="must be a slug"):
        run(SECRETS.read_bytes(), source="AWS Prod!")
    assert UsageImport.objects.count() == 0


def test_management_command(mapped, person):
    grant = grant_directly(person, mapped["read"])
    out = StringIO()
    call_command("import_usage_events", str(SECRETS), "--source", "aws-prod", stdout=out)
    assert "10 events, 10 matched, 1 grants used (1 moved forward)" in out.getvalue()
    grant.refresh_from_db()
    assert grant.last_used_at == LAST_SECRET_READ
    with pytest.raises(CommandError, match="refused, nothing stored: .*line 112"):
        call_command("import_usage_events", str(MALFORMED), "--source", "aws-prod")
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_usage_events", "/nonexistent.json", "--source", "aws-prod")


def test_watch_folder_imports_and_sets_aside(mapped, person, tmp_path):
    grant = grant_directly(person, mapped["read"])
    inbox = tmp_path / "aws-prod"
    inbox.mkdir()
    (inbox / "a.json").write_bytes(SECRETS.read_bytes())
    (inbox / "b.json").write_bytes(MALFORMED.read_bytes())
    outcomes = tasks.watch_folder_once(tmp_path)
    assert outcomes[0] == "aws-prod/a.json: imported"
    assert outcomes[1].startswith("aws-prod/b.json: refused: b.json: line 112")
    assert (inbox / "done" / "a.json").exists()
    assert (inbox / "failed" / "b.json").exists()
    assert "line 112" in (inbox / "failed" / "b.json.error").read_text()
    grant.refresh_from_db()
    assert grant.last_used_at == LAST_SECRET_READ
    assert tasks.watch_folder_once(tmp_path) == []  # nothing imported twice


def test_rule_globs_are_case_insensitive(aws, person):
    ent = make_entitlement(aws, "all-secrets")
    UsageMappingRule.objects.create(
        event_source="SecretsManager.*", event_name="get*", entitlement=ent
    )
    PrincipalAlias.objects.create(external_id="christophe.tafanidereeper", user=person)
    grant = grant_directly(person, ent)
    run(SECRETS.read_bytes())
    grant.refresh_from_db()
    assert grant.last_used_at == LAST_SECRET_READ


# --- who imports ------------------------------------------------------------------------
def test_a_string_actor_is_refused_and_nothing_is_stored(mapped, person):
    grant = grant_directly(person, mapped["read"])
    before = grant.last_used_at
    with pytest.raises(TypeError):
        services.usage_import_events(
            actor="system:test", source_slug="aws-prod", data=SECRETS.read_bytes(), file_name="f"
        )
    grant.refresh_from_db()
    assert grant.last_used_at == before != LAST_SECRET_READ
    assert not UsageImport.objects.exists()
    assert not AuditEvent.objects.filter(action="usage.imported").exists()


def test_the_importer_is_stored_by_label(mapped, person, admin):
    assert run(SECRETS.read_bytes(), "secrets.json").imported_by == "system:test"
    by_person = services.usage_import_events(
        actor=admin, source_slug="aws-prod", data=SECRETS.read_bytes(), file_name="again.json"
    )
    assert by_person.imported_by == admin.email
    event = AuditEvent.objects.filter(action="usage.imported").latest("pk")
    assert (event.actor_id, event.actor_label) == (admin.pk, admin.email)


def _bomb(limit_bytes: int) -> bytes:
    """Gzipped JSON lines of mapped events: about 50 MB once decompressed, ~100 KB as sent."""
    line = (json.dumps(json.loads(SECRETS.read_text())["Records"][0]) + "\n").encode()
    lines = line * (50 * 1024 * 1024 // len(line))
    assert len(lines) > 40 * limit_bytes
    return gzip.compress(lines, compresslevel=9)


def test_a_gzip_bomb_is_refused_while_decompressing_and_nothing_stored(settings, mapped, person):
    grant = grant_directly(person, mapped["read"])
    events = AuditEvent.objects.count()
    settings.TOLLGATE_USAGE_MAX_BYTES = 1024 * 1024
    data = _bomb(settings.TOLLGATE_USAGE_MAX_BYTES)
    assert len(data) < 1024 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(ValidationError) as exc:
            run(data, "trail.json.gz")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert exc.value.message == (
        "trail.json.gz: larger than the limit of 1,048,576 bytes "
        "(TOLLGATE_USAGE_MAX_BYTES, counted decompressed)"
    )
    assert peak < 10 * 1024 * 1024  # never inflated whole (that would be 50 MB)
    assert UsageImport.objects.count() == 0
    assert AuditEvent.objects.count() == events
    grant.refresh_from_db()
    assert grant.last_used_at is None


def test_a_plain_file_over_the_limit_is_refused(settings, mapped):
    data = SECRETS.read_bytes()
    settings.TOLLGATE_USAGE_MAX_BYTES = len(data) - 1
    with pytest.raises(
        ValidationError, match=f"secrets.json: larger than the limit of {len(data) - 1:,}"
    ):
        run(data, "secrets.json")
    settings.TOLLGATE_USAGE_MAX_BYTES = len(data)
    assert run(data, "secrets.json").events == 10
    assert run(gzip.compress(data), "secrets.json.gz").events == 10


def test_watch_folder_sets_a_gzip_bomb_aside_with_the_limit(settings, mapped, person, tmp_path):
    grant = grant_directly(person, mapped["read"])
    settings.TOLLGATE_USAGE_MAX_BYTES = 1024 * 1024
    inbox = tmp_path / "aws-prod"
    inbox.mkdir()
    (inbox / "bomb.json.gz").write_bytes(_bomb(settings.TOLLGATE_USAGE_MAX_BYTES))
    outcomes = tasks.watch_folder_once(tmp_path)
    assert outcomes == [
        "aws-prod/bomb.json.gz: refused: bomb.json.gz: larger than the limit of 1,048,576 bytes "
        "(TOLLGATE_USAGE_MAX_BYTES, counted decompressed)"
    ]
    assert (inbox / "failed" / "bomb.json.gz").exists()
    assert "1,048,576 bytes" in (inbox / "failed" / "bomb.json.gz.error").read_text()
    assert UsageImport.objects.count() == 0
    grant.refresh_from_db()
    assert grant.last_used_at is None
