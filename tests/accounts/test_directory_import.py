"""A8 directory import: joiners, movers, leavers, idempotence, and refusing bad input."""

from __future__ import annotations

import json
from datetime import date
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connections
from django.urls import reverse

from accounts import directory
from accounts.directory import DirectoryImportError, parse_text
from accounts.management.commands.import_directory import Command as ImportCommand
from accounts.models import Membership, Team, TeamMove, User
from accounts.services import directory_import, membership_set_role
from audit.models import AuditEvent
from portal.core.actors import DIRECTORY_IMPORT
from tests.conftest import make_team, make_user

HEADER = "email,name,team,parent_team,manager_email,worker_type,status,start_date,end_date"
LEAD = "lead@corp.test,Lea Lead,payments,platform,,employee,active,2020-01-01,"
ANN = "ann@corp.test,Ann Able,payments,platform,lead@corp.test,employee,active,2021-02-03,"
BOB = (
    "bob@corp.test,Bob Baker,search,platform,lead@corp.test,contractor,active,2022-03-04,2027-01-01"
)
BASE = [LEAD, ANN, BOB]


def csv_text(*lines: str, header: str = HEADER) -> str:
    return header + "\n" + "\n".join(lines) + "\n"


def run(text: str, *, full: bool = False, dry_run: bool = False):
    return directory_import(
        rows=parse_text(text), full=full, dry_run=dry_run, actor=DIRECTORY_IMPORT, source="hr.csv"
    )


def state():
    return {
        "users": User.objects.count(),
        "active": User.objects.filter(is_active=True).count(),
        "teams": Team.objects.count(),
        "memberships": Membership.objects.count(),
        "moves": TeamMove.objects.count(),
        "events": AuditEvent.objects.count(),
        "fingerprint": list(
            User.objects.order_by("email").values_list(
                "email", "name", "team__slug", "manager__email", "status", "end_date"
            )
        ),
        "parents": list(Team.objects.order_by("slug").values_list("slug", "parent__slug")),
    }


def actions_since(seq: int) -> list[str]:
    return list(AuditEvent.objects.filter(seq__gt=seq).values_list("action", flat=True))


def last_seq() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


@pytest.mark.sqlite
@pytest.mark.django_db
def test_first_import_creates_teams_people_memberships_and_one_event_each():
    result = run(csv_text(*BASE))

    assert result.counts == {
        "teams_created": 3,
        "teams_updated": 0,
        "created": 3,
        "updated": 0,
        "moved": 0,
        "memberships_added": 0,
        "rejoined": 0,
        "left": 0,
    }
    platform = Team.objects.get(slug="platform")
    assert platform.name == "Platform" and platform.parent is None
    assert Team.objects.get(slug="payments").parent == platform
    assert Team.objects.get(slug="search").parent == platform
    ann = User.objects.get(email="ann@corp.test")
    assert ann.manager.email == "lead@corp.test"
    assert ann.team.slug == "payments"
    assert ann.start_date == date(2021, 2, 3)
    assert not ann.has_usable_password()
    bob = User.objects.get(email="bob@corp.test")
    assert (bob.worker_type, bob.end_date) == ("contractor", date(2027, 1, 1))
    assert set(Membership.objects.values_list("user__email", "team__slug", "role")) == {
        ("lead@corp.test", "payments", "member"),
        ("ann@corp.test", "payments", "member"),
        ("bob@corp.test", "search", "member"),
    }
    assert sorted(actions_since(0)) == sorted(
        ["team.created"] * 3 + ["user.created"] * 3 + ["directory.imported"]
    )
    created = AuditEvent.objects.get(action="user.created", target_id=str(ann.pk))
    assert created.after["manager"] == "lead@corp.test"
    assert created.after["team"] == "payments"
    assert created.actor_label == "system:directory-import"


@pytest.mark.sqlite
@pytest.mark.django_db
def test_second_run_of_the_same_file_changes_nothing_and_writes_no_event():
    text = csv_text(*BASE, "old@corp.test,Old Timer,search,,,employee,leaver,2019-01-01,")
    run(text)
    before = state()

    again = run(text)
    again_full = run(text, full=True)

    assert again.changed is False and again_full.changed is False
    assert again.counts == dict.fromkeys(again.counts, 0)
    assert state() == before


@pytest.mark.django_db
def test_changed_field_is_the_only_thing_updated_and_audited():
    run(csv_text(*BASE))
    seq = last_seq()

    result = run(csv_text(LEAD, ANN.replace("Ann Able", "Ann Baker"), BOB))

    assert result.counts["updated"] == 1
    assert actions_since(seq) == ["user.updated", "directory.imported"]
    event = AuditEvent.objects.get(action="user.updated")
    assert event.before == {"name": "Ann Able"}
    assert event.after == {"name": "Ann Baker"}
    assert User.objects.get(email="ann@corp.test").name == "Ann Baker"


@pytest.mark.django_db
def test_manager_change_and_team_reparent_are_audited():
    run(csv_text(*BASE))
    seq = last_seq()
    moved_parent = (
        "bob@corp.test,Bob Baker,search,infra,ann@corp.test,contractor,active,2022-03-04,2027-01-01"
    )

    run(csv_text(LEAD, ANN, moved_parent))

    assert sorted(actions_since(seq)) == sorted(
        ["team.created", "team.updated", "user.updated", "directory.imported"]
    )
    assert Team.objects.get(slug="search").parent.slug == "infra"
    assert User.objects.get(email="bob@corp.test").manager.email == "ann@corp.test"
    updated = AuditEvent.objects.get(action="team.updated")
    assert (updated.before, updated.after) == ({"parent": "platform"}, {"parent": "infra"})


@pytest.mark.django_db
def test_mover_is_recorded_and_home_membership_follows():
    run(csv_text(*BASE))
    ann = User.objects.get(email="ann@corp.test")
    lead = User.objects.get(email="lead@corp.test")
    payments = Team.objects.get(slug="payments")
    membership_set_role(actor=DIRECTORY_IMPORT, team=payments, user=lead, role="lead")
    seq = last_seq()

    run(
        csv_text(
            LEAD.replace(",payments,", ",search,"),
            ANN.replace(",payments,", ",search,"),
            BOB,
        )
    )

    assert sorted(actions_since(seq)) == ["directory.imported", "user.moved", "user.moved"]
    move = TeamMove.objects.get(user=ann)
    assert (move.from_team.slug, move.to_team.slug, move.reviewed) == ("payments", "search", False)
    ann.refresh_from_db()
    assert ann.team.slug == "search"
    assert set(Membership.objects.filter(user=ann).values_list("team__slug", "role")) == {
        ("search", "member")
    }
    # The lead role in the old team is not a directory attribute: it stays.
    assert set(Membership.objects.filter(user=lead).values_list("team__slug", "role")) == {
        ("payments", "lead"),
        ("search", "member"),
    }
    event = AuditEvent.objects.get(action="user.moved", target_id=str(ann.pk))
    assert event.before == {"team": "payments"}
    assert event.after == {
        "team": "search",
        "move_id": move.pk,
        "membership_removed": "payments",
        "membership_added": "search",
    }


@pytest.mark.sqlite
@pytest.mark.django_db
def test_leaver_is_deactivated_and_signed_out_at_once(client):
    run(csv_text(*BASE))
    ann = User.objects.get(email="ann@corp.test")
    client.force_login(ann)
    assert client.get("/").status_code == 200
    seq = last_seq()

    result = run(
        csv_text(LEAD, ANN.replace(",active,2021-02-03,", ",leaver,2021-02-03,2026-10-31"), BOB)
    )

    assert result.counts["left"] == 1
    ann.refresh_from_db()
    assert (ann.status, ann.is_active, ann.end_date) == ("leaver", False, date(2026, 10, 31))
    assert actions_since(seq) == ["user.left", "directory.imported"]
    left = AuditEvent.objects.get(action="user.left")
    assert left.after["sessions_ended"] == 1
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


@pytest.mark.django_db
def test_leaver_without_end_date_keeps_the_recorded_date_on_rerun():
    run(csv_text(*BASE))
    text = csv_text(LEAD, ANN.replace(",active,", ",leaver,"), BOB)
    run(text)
    ann = User.objects.get(email="ann@corp.test")
    assert ann.end_date is not None
    before = state()

    assert run(text).changed is False
    assert state() == before


@pytest.mark.django_db
def test_full_import_makes_missing_active_people_leavers_but_keeps_superusers(client):
    run(csv_text(*BASE))
    stray = make_user("stray@corp.test", team=Team.objects.get(slug="search"))
    root = User.objects.create_superuser("root@corp.test", "pw-root-123")
    client.force_login(stray)
    seq = last_seq()

    partial = run(csv_text(*BASE))
    assert partial.changed is False  # without --full, absence means nothing
    result = run(csv_text(*BASE), full=True)

    assert result.counts["left"] == 1
    stray.refresh_from_db()
    root.refresh_from_db()
    assert (stray.status, stray.is_active) == ("leaver", False)
    assert (root.status, root.is_active) == ("active", True)
    assert actions_since(seq) == ["user.left", "directory.imported"]
    assert (
        "missing from a full directory import" in AuditEvent.objects.get(action="user.left").reason
    )
    assert client.get("/").status_code == 302
    assert run(csv_text(*BASE), full=True).changed is False


@pytest.mark.django_db
def test_a_leaver_who_comes_back_rejoins():
    run(csv_text(LEAD, ANN.replace(",active,2021-02-03,", ",leaver,2021-02-03,2025-01-31"), BOB))
    seq = last_seq()

    run(csv_text(*BASE))

    ann = User.objects.get(email="ann@corp.test")
    assert (ann.status, ann.is_active, ann.end_date) == ("active", True, None)
    assert actions_since(seq) == ["user.rejoined", "team.membership_changed", "directory.imported"]
    assert Membership.objects.filter(user=ann, team__slug="payments", role="member").exists()


@pytest.mark.django_db
def test_import_restores_a_missing_home_membership():
    run(csv_text(*BASE))
    Membership.objects.filter(user__email="ann@corp.test").delete()
    seq = last_seq()

    result = run(csv_text(*BASE))

    assert result.counts["memberships_added"] == 1
    assert actions_since(seq) == ["team.membership_changed", "directory.imported"]
    assert Membership.objects.filter(user__email="ann@corp.test", team__slug="payments").exists()


BAD_INPUTS = {
    "unknown manager": (
        csv_text(LEAD, ANN.replace("lead@corp.test", "ghost@corp.test"), BOB),
        [(2, "manager_email", "unknown manager ghost@corp.test")],
    ),
    "manager cycle in the file": (
        csv_text(LEAD.replace(",,employee", ",bob@corp.test,employee"), ANN, BOB),
        [(1, "manager_email", "manager cycle: lead@corp.test -> bob@corp.test -> lead@corp.test")],
    ),
    "manager cycle through an existing person": (
        csv_text(LEAD.replace(",,employee", ",ann@corp.test,employee")),
        [(1, "manager_email", "manager cycle: lead@corp.test -> ann@corp.test -> lead@corp.test")],
    ),
    "own manager": (
        csv_text(LEAD.replace(",,employee", ",lead@corp.test,employee"), ANN, BOB),
        [(1, "manager_email", "a person cannot be their own manager")],
    ),
    "team cycle in the file": (
        csv_text(
            LEAD,
            ANN,
            BOB,
            "cat@corp.test,Cat,platform,search,lead@corp.test,employee,active,2020-01-01,",
        ),
        [(3, "parent_team", "team cycle: search -> platform -> search")],
    ),
    "team cycle through an existing team": (
        csv_text("cat@corp.test,Cat,platform,payments,,employee,active,2020-01-01,"),
        [(1, "parent_team", "team cycle: platform -> payments -> platform")],
    ),
    "team is its own parent": (
        csv_text("cat@corp.test,Cat,platform,platform,,employee,active,2020-01-01,"),
        [(1, "parent_team", "team cycle: platform -> platform")],
    ),
    "team given two parents": (
        csv_text(LEAD, ANN.replace(",platform,", ",infra,"), BOB),
        [(2, "parent_team", "team payments is given two parents: platform in row 1 and infra")],
    ),
    "duplicate e-mail": (
        csv_text(*BASE, ANN.replace("ann@corp.test", "ANN@corp.test")),
        [(4, "email", "duplicate e-mail ann@corp.test: already in row 2")],
    ),
    "bad date": (
        csv_text(LEAD, ANN.replace("2021-02-03", "2021-02-30"), BOB),
        [(2, "start_date", "'2021-02-30' is not a valid date")],
    ),
    "date in the wrong form": (
        csv_text(LEAD, ANN.replace("2021-02-03", "03/02/2021"), BOB),
        [(2, "start_date", "is not a date in YYYY-MM-DD form")],
    ),
    "end before start": (
        csv_text(LEAD, ANN.replace("2021-02-03,", "2021-02-03,2020-01-01"), BOB),
        [(2, "end_date", "2020-01-01 is before start_date 2021-02-03")],
    ),
    "unknown column": (
        csv_text(LEAD + ",x", ANN + ",y", BOB + ",z", header=HEADER + ",nickname"),
        [(0, "nickname", "unknown column")],
    ),
    "missing required column": (
        "email,name,team,worker_type,status\nann@corp.test,Ann,payments,employee,active\n",
        [(0, "start_date", "required column is missing from the header")],
    ),
    "bad worker type": (
        csv_text(LEAD, ANN.replace(",employee,", ",intern,"), BOB),
        [(2, "worker_type", "'intern' is not one of employee, contractor")],
    ),
    "bad status": (
        csv_text(LEAD, ANN.replace(",active,", ",gone,"), BOB),
        [(2, "status", "'gone' is not one of active, leaver")],
    ),
    "missing required field": (
        csv_text(LEAD, ANN.replace("Ann Able", ""), BOB),
        [(2, "name", "required field is missing or empty")],
    ),
    "bad e-mail": (
        csv_text(LEAD, ANN.replace("ann@corp.test", "ann-at-corp"), BOB),
        [(2, "email", "'ann-at-corp' is not a valid e-mail address")],
    ),
    "bad team slug": (
        csv_text(LEAD, ANN.replace(",payments,", ",pay ments,"), BOB),
        [(2, "team", "'pay ments' is not a team slug")],
    ),
    "too many values": (
        csv_text(LEAD, ANN + ",extra", BOB),
        [(2, "-", "10 values for 9 columns")],
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_refused_with_row_and_field_and_changes_nothing(case, client):
    run(csv_text(*BASE))  # existing people and teams, so cycles through them can be found
    ann = User.objects.get(email="ann@corp.test")
    client.force_login(ann)
    before = state()
    text, expected = BAD_INPUTS[case]

    with pytest.raises(DirectoryImportError) as excinfo:
        run(text, full=True)

    found = [(e.row, e.field, e.reason) for e in excinfo.value.errors]
    for row, field, reason in expected:
        assert any(r == row and f == field and reason in msg for r, f, msg in found), found
    assert len(found) == len(expected), found
    assert state() == before
    assert client.get("/").status_code == 200  # nobody was signed out


@pytest.mark.sqlite
@pytest.mark.django_db
def test_every_error_of_a_file_is_reported_not_only_the_first():
    before = state()
    text = csv_text(
        LEAD.replace("2020-01-01", "2020-1-1"),
        ANN.replace("lead@corp.test", "nobody@corp.test"),
        BOB.replace(",contractor,", ",freelancer,"),
        BOB,
        "cy@corp.test,Cy,payments,platform,ghost@corp.test,intern,active,2020-01-01,",
    )

    with pytest.raises(DirectoryImportError) as excinfo:
        run(text)

    assert [str(e) for e in excinfo.value.errors] == [
        "row 1, field start_date: '2020-1-1' is not a date in YYYY-MM-DD form",
        "row 2, field manager_email: unknown manager nobody@corp.test: not in the file and not an existing person",
        "row 3, field worker_type: 'freelancer' is not one of employee, contractor",
        "row 4, field email: duplicate e-mail bob@corp.test: already in row 3",
        # a row with a bad field still takes part in the checks across rows
        "row 5, field manager_email: unknown manager ghost@corp.test: not in the file and not an existing person",
        "row 5, field worker_type: 'intern' is not one of employee, contractor",
    ]
    assert state() == before


def as_json(lines: list[str]) -> str:
    keys = HEADER.split(",")
    return json.dumps([dict(zip(keys, line.split(","), strict=True)) for line in lines])


@pytest.mark.django_db
def test_json_input_gives_the_same_result_as_csv():
    result = directory_import(
        rows=parse_text(as_json(BASE)), full=False, dry_run=False, actor=DIRECTORY_IMPORT
    )
    assert result.counts["created"] == 3
    assert User.objects.get(email="ann@corp.test").manager.email == "lead@corp.test"
    before = state()

    assert run(csv_text(*BASE)).changed is False  # the CSV of the same directory: no change
    assert state() == before


@pytest.mark.django_db
def test_json_rows_may_omit_optional_keys_and_unknown_keys_are_named():
    rows = [
        {
            "email": "solo@corp.test",
            "name": "Solo",
            "team": "ops",
            "worker_type": "employee",
            "status": "active",
            "start_date": "2024-05-06",
        }
    ]
    assert run(json.dumps(rows)).counts["created"] == 1
    before = state()
    bad = [{**rows[0], "email": "duo@corp.test", "nickname": "D"}, {"email": "trio@corp.test"}]

    with pytest.raises(DirectoryImportError) as excinfo:
        run(json.dumps(bad))

    assert [(e.row, e.field) for e in excinfo.value.errors] == [
        (1, "nickname"),
        (2, "name"),
        (2, "start_date"),
        (2, "status"),
        (2, "team"),
        (2, "worker_type"),
    ]
    assert state() == before


@pytest.mark.django_db
def test_malformed_json_is_refused():
    with pytest.raises(DirectoryImportError) as excinfo:
        run('[{"email": "a@corp.test"')
    assert excinfo.value.errors[0].row == 0
    assert "invalid JSON" in excinfo.value.errors[0].reason
    assert User.objects.count() == 0


@pytest.mark.sqlite
@pytest.mark.django_db
def test_dry_run_reports_the_diff_and_writes_nothing():
    run(csv_text(*BASE))
    before = state()
    text = csv_text(
        LEAD,
        ANN.replace(",payments,", ",search,").replace("Ann Able", "Ann Baker"),
        "new@corp.test,Nia New,data,engineering,lead@corp.test,employee,active,2026-01-05,",
    )

    result = run(text, full=True, dry_run=True)

    assert state() == before
    assert result.dry_run is True
    assert result.counts == {
        "teams_created": 2,
        "teams_updated": 0,
        "created": 1,
        "updated": 1,
        "moved": 1,
        "memberships_added": 0,
        "rejoined": 0,
        "left": 1,
    }
    assert result.diff_lines() == [
        "+ team engineering (name 'Engineering', parent -)",
        "+ team data (name 'Data', parent engineering)",
        "+ person new@corp.test: name 'Nia New', team data, manager lead@corp.test, employee, "
        "active, start 2026-01-05, end -",
        "~ person ann@corp.test: name Ann Able -> Ann Baker",
        "> move ann@corp.test: team payments -> search",
        "- leaver bob@corp.test: missing from a full directory import",
    ]
    # The real run does exactly what the dry run said.
    assert run(text, full=True).counts == result.counts


@pytest.mark.django_db
def test_command_applies_a_file_and_prints_a_summary(tmp_path):
    path = tmp_path / "hr.csv"
    path.write_text(csv_text(*BASE), encoding="utf-8")
    out = StringIO()

    call_command("import_directory", str(path), stdout=out)

    assert User.objects.count() == 3
    assert "hr.csv: 3 rows read; changed: teams_created 3" in out.getvalue()
    out = StringIO()
    call_command("import_directory", str(path), stdout=out)
    assert "hr.csv: 3 rows read; no changes" in out.getvalue()
    assert AuditEvent.objects.filter(action="directory.imported").count() == 1
    assert AuditEvent.objects.get(action="directory.imported").after["source"] == "hr.csv"


@pytest.mark.django_db
def test_command_dry_run_prints_the_diff(tmp_path):
    path = tmp_path / "hr.json"
    path.write_text(as_json(BASE), encoding="utf-8")
    out = StringIO()

    call_command("import_directory", str(path), "--dry-run", stdout=out)

    assert "+ person ann@corp.test: name 'Ann Able', team payments" in out.getvalue()
    assert "dry run, nothing written: 3 rows read; would change" in out.getvalue()
    assert User.objects.count() == 0
    assert AuditEvent.objects.count() == 0


def run_from_argv(monkeypatch, *argv: str) -> tuple[int, str, str]:
    """Run the command as `manage.py` would (exit status included), inside the test db."""
    monkeypatch.setattr(connections, "close_all", lambda: None)  # keep the test transaction
    out, err = StringIO(), StringIO()
    command = ImportCommand(stdout=out, stderr=err)
    try:
        command.run_from_argv(["manage.py", "import_directory", *argv])
    except SystemExit as exc:
        return int(exc.code), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


@pytest.mark.sqlite
@pytest.mark.django_db
def test_command_exit_status_and_error_lines(tmp_path, monkeypatch):
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text(csv_text(*BASE), encoding="utf-8")
    bad.write_text(
        csv_text(LEAD, ANN.replace("lead@corp.test", "ghost@corp.test"), BOB, BOB),
        encoding="utf-8",
    )

    code, out, err = run_from_argv(monkeypatch, str(bad), "--full")

    assert code == 1
    assert (
        "row 2, field manager_email: unknown manager ghost@corp.test: not in the file and not an "
        "existing person" in err
    )
    assert "row 4, field email: duplicate e-mail bob@corp.test: already in row 3" in err
    assert "2 error(s)" in err and "nothing was changed" in err
    assert User.objects.count() == 0 and AuditEvent.objects.count() == 0

    code, out, err = run_from_argv(monkeypatch, str(good))
    assert (code, err) == (0, "")
    assert User.objects.count() == 3


def test_row_numbering_is_documented_in_the_errors():
    error = directory.RowError(3, "email", "boom")
    assert str(error) == "row 3, field email: boom"
    assert str(directory.RowError(0, "nickname", "unknown column")) == (
        "row 0 (header), field nickname: unknown column"
    )


@pytest.mark.django_db
def test_existing_persona_team_names_are_not_overwritten():
    payments = make_team("payments", make_team("platform"))
    Team.objects.filter(pk=payments.pk).update(name="Payments & Billing")
    run(csv_text(*BASE))
    assert Team.objects.get(slug="payments").name == "Payments & Billing"
    assert Team.objects.get(slug="search").name == "Search"


@pytest.mark.django_db
def test_full_import_of_an_empty_file_is_refused():
    run(csv_text(*BASE))
    before = state()

    with pytest.raises(DirectoryImportError) as excinfo:
        run(HEADER + "\n", full=True)

    assert [str(e) for e in excinfo.value.errors] == [
        "row 0 (header), field -: a full import of a file without rows is refused"
    ]
    assert state() == before
