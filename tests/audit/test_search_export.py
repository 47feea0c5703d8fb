"""Audit search (auditors, security, admins only), per-object history, export and its checks."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from audit import registry as actions
from audit.exporting import manifest_path, verify_export_bytes, verify_export_file
from audit.models import AuditEvent
from audit.services import audit_record
from portal.core.actors import SystemActor
from tests.conftest import PASSWORD

from .helpers import append_events

SEARCH = "/audit/"


def _login(client, user):
    assert client.login(email=user.email, password=PASSWORD)
    return client


def _seqs(response) -> list[int]:
    return [event.seq for event in response.context["page"].object_list]


@pytest.fixture
def events(requester, manager, other_team_user):
    """Four events: two by team members of payments, one about a payments person, one other."""
    return {
        "by_requester": audit_record(
            actor=requester, action=actions.USER_UPDATED, target_type="test.thing", target_id="7"
        ),
        "about_manager": audit_record(
            actor=SystemActor("hr-sync"), action=actions.USER_MOVED, target=manager, reason="moved"
        ),
        "by_other": audit_record(
            actor=other_team_user,
            action=actions.USER_UPDATED,
            target_type="test.thing",
            target_id="8",
        ),
        "login": audit_record(actor=requester, action=actions.AUTH_LOGIN),
    }


# --- who may search ---------------------------------------------------------------------------


@pytest.mark.sqlite
@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["requester", "manager", "service_owner", "finance"])
def test_non_auditors_get_404_everywhere(client, personas, events, persona):
    _login(client, personas[persona])
    before = AuditEvent.objects.count()

    assert client.get(SEARCH).status_code == 404
    assert client.get(reverse("audit:history", args=["test.thing", "7"])).status_code == 404
    response = client.post(reverse("audit:export"), {"format": "csv"})

    assert response.status_code == 404
    assert AuditEvent.objects.count() == before  # no export was recorded


@pytest.mark.django_db
def test_anonymous_is_sent_to_sign_in(client):
    response = client.get(SEARCH)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


@pytest.mark.sqlite
@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["auditor", "security", "admin"])
def test_auditors_security_and_admins_search(client, personas, events, persona):
    _login(client, personas[persona])  # signing in writes an auth.login event too
    response = client.get(SEARCH)
    assert response.status_code == 200
    login = AuditEvent.objects.get(action=actions.AUTH_LOGIN, actor=personas[persona])
    assert _seqs(response) == [login.seq] + sorted((e.seq for e in events.values()), reverse=True)
    assert b'id="nav-audit"' in response.content


@pytest.mark.django_db
def test_nav_link_hidden_from_engineers(client, requester):
    _login(client, requester)
    response = client.get(reverse("home"))
    assert response.status_code == 200
    assert b'id="nav-audit"' not in response.content


# --- filters ----------------------------------------------------------------------------------


@pytest.mark.sqlite
@pytest.mark.django_db
def test_filters_are_exact(client, auditor, events, requester):
    _login(client, auditor)
    e = events

    assert _seqs(client.get(SEARCH, {"actor": "REQUESTER@example.com"})) == [
        e["login"].seq,
        e["by_requester"].seq,
    ]
    assert _seqs(client.get(SEARCH, {"action": actions.USER_MOVED})) == [e["about_manager"].seq]
    assert _seqs(client.get(SEARCH, {"target_type": "test.thing", "target_id": "8"})) == [
        e["by_other"].seq
    ]
    assert _seqs(client.get(SEARCH, {"target_type": "test.thing"})) == [
        e["by_other"].seq,
        e["by_requester"].seq,
    ]
    assert _seqs(
        client.get(SEARCH, {"actor": "requester@example.com", "action": "auth.login"})
    ) == [e["login"].seq]
    assert _seqs(client.get(SEARCH, {"actor": "nobody@example.com"})) == []


@pytest.mark.django_db
def test_team_filter_matches_actor_or_target_person(client, auditor, events):
    _login(client, auditor)
    e = events
    assert _seqs(client.get(SEARCH, {"team": "payments"})) == [
        e["login"].seq,
        e["about_manager"].seq,
        e["by_requester"].seq,
    ]
    assert _seqs(client.get(SEARCH, {"team": "other"})) == [e["by_other"].seq]


@pytest.mark.django_db
def test_time_range_is_half_open(client, auditor, events):
    _login(client, auditor)
    e = events
    since = e["about_manager"].occurred_at.isoformat()
    until = e["login"].occurred_at.isoformat()
    response = client.get(SEARCH, {"since": since, "until": until})
    assert _seqs(response) == [e["by_other"].seq, e["about_manager"].seq]


@pytest.mark.django_db
def test_unknown_action_is_a_form_error_not_a_result(client, auditor, events):
    _login(client, auditor)
    response = client.get(SEARCH, {"action": "no.such"})
    assert response.status_code == 200
    assert _seqs(response) == []
    assert "action" in response.context["form"].errors


@pytest.mark.django_db
def test_pagination_and_htmx_partial(client, auditor):
    events = append_events(55)
    _login(client, auditor)
    first = client.get(SEARCH)
    assert len(first.context["page"].object_list) == 50
    partial = client.get(SEARCH, {"page": 2}, HTTP_HX_REQUEST="true")
    assert partial.status_code == 200
    assert [t.name for t in partial.templates][0] == "audit/partials/_results.html"
    assert b"<html" not in partial.content
    # 55 events plus the auditor's sign-in: page 2 holds the oldest six
    assert _seqs(partial) == [e.seq for e in reversed(events[:6])]


@pytest.mark.django_db
def test_history_page_lists_the_objects_events(client, auditor, events, manager):
    _login(client, auditor)
    response = client.get(reverse("audit:history", args=["accounts.user", str(manager.pk)]))
    assert response.status_code == 200
    assert _seqs(response) == [events["about_manager"].seq]
    assert response.context["target_type"] == "accounts.user"


# --- export -----------------------------------------------------------------------------------


def _export(tmp_path: Path, fmt: str, **options) -> Path:
    out = tmp_path / f"trail.{fmt}"
    call_command("export_audit", format=fmt, output=str(out), stdout=io.StringIO(), **options)
    return out


def _verify(path: Path) -> str:
    out = io.StringIO()
    call_command("verify_audit", export=str(path), stdout=out)
    return out.getvalue()


@pytest.mark.sqlite
@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_and_manifest_verify(tmp_path, fmt):
    events = append_events(4)
    audit_record(
        actor=SystemActor("test-writer"),
        action=actions.USER_UPDATED,
        target_type="test.thing",
        target_id="odd",
        before={"list": [1, "two", None], "nested": {"é": "ü"}},
        after=None,
        reason='quotes " and, commas\nand a newline',
    )
    audit_record(
        actor=SystemActor("test-writer"),
        action=actions.USER_UPDATED,
        target_type="test.thing",
        target_id="=1+1",
        reason='=HYPERLINK("http://evil.example","click")',
    )
    out = _export(tmp_path, fmt)
    if fmt == "csv":  # a spreadsheet shows the formula as text; the export still verifies
        text = out.read_text()
        assert "'=HYPERLINK(" in text and ",'=1+1," in text
        assert "\n=HYPERLINK" not in text and ",=HYPERLINK" not in text

    manifest = json.loads(manifest_path(out).read_text())
    assert manifest["file"] == out.name
    assert manifest["count"] == 6
    assert manifest["first_seq"] == events[0].seq
    assert manifest["last_seq"] == events[0].seq + 5
    assert manifest["first_prev_hash"] == events[0].prev_hash
    assert manifest["last_hash"] == AuditEvent.objects.get(seq=events[0].seq + 5).hash
    assert set(manifest) == {
        "file",
        "sha256",
        "count",
        "first_seq",
        "last_seq",
        "first_prev_hash",
        "last_hash",
        "generated_at",
        "signature",
    }
    assert _verify(out).startswith(f"audit export OK: 6 events in {out}")
    exported = AuditEvent.objects.get(action=actions.AUDIT_EXPORTED)
    assert exported.actor_label == "system:cli"
    assert exported.after["count"] == 6


@pytest.mark.django_db
def test_export_range_since_until(tmp_path):
    events = append_events(4)
    out = _export(
        tmp_path,
        "jsonl",
        since=events[1].occurred_at.isoformat(),
        until=events[3].occurred_at.isoformat(),
    )
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["seq"] for row in lines] == [events[1].seq, events[2].seq]
    assert verify_export_file(out).ok


def _jsonl_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _fails(path: Path) -> str:
    with pytest.raises(CommandError) as exc:
        _verify(path)
    assert exc.value.returncode == 1
    return str(exc.value)


@pytest.mark.sqlite
@pytest.mark.django_db
def test_edited_row_fails_naming_the_row(tmp_path):
    events = append_events(4)
    out = _export(tmp_path, "jsonl")
    rows = _jsonl_rows(out)
    rows[2]["reason"] = "nothing to see"
    _write_jsonl(out, rows)

    message = _fails(out)
    assert f"row 3 (seq {events[2].seq}): content does not match its hash (row edited)" in message
    assert "manifest sha256" in message


@pytest.mark.django_db
def test_deleted_row_fails_naming_the_row(tmp_path):
    events = append_events(4)
    out = _export(tmp_path, "csv")
    lines = out.read_text().splitlines(keepends=True)
    del lines[2]  # header + row 1 kept; row 2 (seq 2) removed
    out.write_text("".join(lines))

    message = _fails(out)
    assert f"row 2 (seq {events[2].seq}): sequence gap, expected seq {events[1].seq}" in message


@pytest.mark.django_db
def test_deleted_last_row_is_caught_by_the_manifest(tmp_path):
    append_events(3)
    out = _export(tmp_path, "jsonl")
    _write_jsonl(out, _jsonl_rows(out)[:-1])
    message = _fails(out)
    assert "manifest count 3 does not match the file's 2" in message


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("sha256", "0" * 64, "manifest sha256 " + "0" * 64),
        ("count", 99, "manifest count 99 does not match the file's 3"),
        ("last_hash", "f" * 64, "manifest last_hash"),
        ("file", "other.jsonl", "manifest names file 'other.jsonl'"),
    ],
)
def test_changed_manifest_fails(tmp_path, key, value, expected):
    append_events(3)
    out = _export(tmp_path, "jsonl")
    mpath = manifest_path(out)
    manifest = json.loads(mpath.read_text())
    manifest[key] = value
    mpath.write_text(json.dumps(manifest))
    assert expected in _fails(out)


@pytest.mark.django_db
def test_an_edited_file_with_a_matching_unsigned_manifest_fails(tmp_path):
    """Someone who edits a row, recomputes the file's SHA-256 in the manifest and drops (or
    forges) the signature is caught: the signature needs AUDIT_CHAIN_KEY."""
    append_events(3)
    out = _export(tmp_path, "jsonl")
    mpath = manifest_path(out)
    manifest = json.loads(mpath.read_text())
    manifest["generated_at"] = "2020-01-01T00:00:00+00:00"
    mpath.write_text(json.dumps(manifest))
    assert "manifest signature does not match" in _fails(out)

    del manifest["signature"]
    mpath.write_text(json.dumps(manifest))
    assert "manifest is not signed" in _fails(out)


@pytest.mark.django_db
def test_a_manifest_signed_under_another_key_fails(tmp_path, settings):
    append_events(2)
    out = _export(tmp_path, "jsonl")
    settings.AUDIT_CHAIN_KEY = "another-key"
    message = _fails(out)
    assert "signed with another AUDIT_CHAIN_KEY" in message


@pytest.mark.django_db
def test_missing_manifest_fails(tmp_path):
    append_events(1)
    out = _export(tmp_path, "csv")
    manifest_path(out).unlink()
    message = _fails(out)
    assert f"manifest {manifest_path(out)} not found" in message


@pytest.mark.django_db
def test_verify_without_export_keeps_checking_the_database():
    append_events(2)
    out = io.StringIO()
    call_command("verify_audit", "--no-checkpoint", stdout=out)
    assert out.getvalue().startswith("audit chain OK: 2 events")


@pytest.mark.django_db
def test_export_rejects_bad_dates(tmp_path):
    with pytest.raises(CommandError, match="--since: 'yesterday' is not an ISO date"):
        _export(tmp_path, "csv", since="yesterday")
    assert not (tmp_path / "trail.csv").exists()
    assert not AuditEvent.objects.filter(action=actions.AUDIT_EXPORTED).exists()


def test_command_exit_codes_in_a_real_process(tmp_path):
    """The shell sees 0 for a good export and 1 for a tampered one (no database needed)."""
    from audit.chain import GENESIS_HASH, compute_hash
    from audit.exporting import build_manifest, write_rows

    rows, prev = [], GENESIS_HASH
    for seq in (1, 2):
        row = {
            "seq": seq,
            "occurred_at": f"2026-01-01T00:00:0{seq}+00:00",
            "actor_id": None,
            "actor_label": "system",
            "action": "user.updated",
            "target_type": "",
            "target_id": "",
            "before": None,
            "after": {"n": seq},
            "reason": "",
            "request_id": "",
            "ip": None,
            "user_agent": "",
            "prev_hash": prev,
        }
        row["hash"] = prev = compute_hash(prev, row)
        rows.append(row)
    out = tmp_path / "x.jsonl"
    buf = io.StringIO()
    write_rows(rows, buf, fmt="jsonl")
    out.write_text(buf.getvalue())

    class _T:
        count, first, last = 2, rows[0], rows[1]

    manifest_path(out).write_text(
        json.dumps(build_manifest(file_name=out.name, data=out.read_bytes(), tally=_T))
    )
    cmd = [sys.executable, "manage.py", "verify_audit", "--export", str(out)]
    env = {**os.environ}
    ok = subprocess.run(cmd, cwd=settings.BASE_DIR, env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    out.write_text(out.read_text().replace('"n":2', '"n":3'))
    bad = subprocess.run(cmd, cwd=settings.BASE_DIR, env=env, capture_output=True, text=True)
    assert bad.returncode == 1
    assert "row 2 (seq 2): content does not match its hash (row edited)" in bad.stderr


# --- export from the UI -----------------------------------------------------------------------


@pytest.mark.sqlite
@pytest.mark.django_db
def test_ui_export_downloads_zip_with_verifiable_manifest(client, auditor):
    append_events(3)
    _login(client, auditor)
    expected_count = AuditEvent.objects.count()  # three plus the sign-in
    response = client.post(reverse("audit:export"), {"format": "csv"})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = sorted(archive.namelist())
    assert len(names) == 2 and names[1] == names[0] + ".manifest.json"
    data = archive.read(names[0])
    manifest = json.loads(archive.read(names[1]))
    assert manifest["file"] == names[0]
    assert manifest["count"] == expected_count == 4
    assert verify_export_bytes(data, manifest, fmt="csv").ok
    event = AuditEvent.objects.get(action=actions.AUDIT_EXPORTED)
    assert event.actor_id == auditor.pk
    assert event.after["sha256"] == manifest["sha256"]


@pytest.mark.django_db
def test_ui_export_refuses_an_inverted_range(client, auditor):
    append_events(1)
    _login(client, auditor)
    response = client.post(
        reverse("audit:export"),
        {"format": "jsonl", "since": "2026-02-01 00:00", "until": "2026-01-01 00:00"},
    )
    assert response.status_code == 400
    assert not AuditEvent.objects.filter(action=actions.AUDIT_EXPORTED).exists()


@pytest.mark.django_db
def test_ui_export_is_post_only(client, auditor):
    _login(client, auditor)
    assert client.get(reverse("audit:export")).status_code == 405
