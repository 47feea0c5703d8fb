"""The LDAP directory source against a real slapd: joiners, movers (by attribute and by team
group), leavers (disabled attribute, and missing in a full run), the mass-leave hold and its
confirmation, incremental runs by modifyTimestamp, the command and the scheduled task."""

from __future__ import annotations

import io
import time

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts import sources
from accounts.directory import DirectoryImportError
from accounts.directory.ldap import SourceConfig, generalized_date, team_slug
from accounts.models import Team, TeamMove, User
from accounts.tasks import ldap_directory_sync
from audit.models import AuditEvent
from connectors.base import ConfigError, TransientError
from portal.core.actors import DIRECTORY_IMPORT
from tests.support import slapd as slapd_support

pytestmark = [pytest.mark.django_db]


def source_config(server, **overrides) -> dict:
    config = {
        "url": server.url,
        "security": "starttls",
        "ca_file": str(server.ca_file),
        "bind_dn": server.service_dn,
        "password_env": "TOLLGATE_LDAP_TEST_PASSWORD",
        "people_base": server.people,
        "people_filter": "(objectClass=inetOrgPerson)",
        "attributes": {"disabled": "businessCategory"},
        "disabled_values": ["disabled"],
        "page_size": 2,  # the service account's plain searches stop at 3 entries: paging reads all
    }
    config.update(overrides)
    return config


@pytest.fixture
def ldap_dir(slapd, settings):
    cache.delete(sources.STATE_KEY)
    settings.TOLLGATE_LDAP_DIRECTORY = source_config(slapd)
    settings.TOLLGATE_SCIM_LEAVER_FLOOR = 2
    settings.TOLLGATE_SCIM_MAX_LEAVER_SHARE = 0.10
    yield slapd
    cache.delete(sources.STATE_KEY)


def person(server, uid, team="Payments", manager=None, **attrs):
    return server.add_person(
        uid,
        mail=f"{uid}@corp.test",
        cn=f"{uid.title()} Person",
        departmentNumber=team,
        manager=f"uid={manager},{server.people}" if manager else None,
        **attrs,
    )


def modify(server, dn, **changes):
    conn = server.admin()
    try:
        ops = {
            attr: [("MODIFY_REPLACE", [value] if value is not None else [])]
            for attr, value in changes.items()
        }
        assert conn.modify(dn, ops), conn.result
    finally:
        conn.unbind()


def delete(server, dn):
    conn = server.admin()
    try:
        assert conn.delete(dn), conn.result
    finally:
        conn.unbind()


def run(**kwargs):
    return sources.directory_ldap_sync(actor=DIRECTORY_IMPORT, **kwargs)


def test_first_run_creates_joiners_with_teams_managers_and_worker_types(ldap_dir):
    person(ldap_dir, "lea", team="Data Platform")
    person(ldap_dir, "ann", manager="lea")
    person(ldap_dir, "cy", manager="lea", employeeType="Contractor")
    ldap_dir.add_person("printer", cn="Printer")  # no mail: not a person Tollgate knows

    outcome = run()

    assert outcome.full is True and outcome.held is False
    assert outcome.read.skipped == [f"uid=printer,{ldap_dir.people}"]
    assert outcome.result.counts["created"] == 3
    people = {
        u.email: (u.name, u.team.slug, u.manager.email if u.manager else None, u.worker_type)
        for u in User.objects.select_related("team", "manager")
    }
    assert people == {
        "lea@corp.test": ("Lea Person", "data-platform", None, "employee"),
        "ann@corp.test": ("Ann Person", "payments", "lea@corp.test", "employee"),
        "cy@corp.test": ("Cy Person", "payments", "lea@corp.test", "contractor"),
    }
    assert sorted(Team.objects.values_list("slug", flat=True)) == ["data-platform", "payments"]
    assert AuditEvent.objects.filter(action="user.created").count() == 3
    # the same directory again: nothing changes, no event
    before = AuditEvent.objects.count()
    again = run(full=True)
    assert again.result.changed is False
    assert AuditEvent.objects.count() == before


def test_incremental_run_reads_only_changed_entries_and_applies_a_mover(ldap_dir):
    person(ldap_dir, "lea")
    ann = person(ldap_dir, "ann", manager="lea")
    person(ldap_dir, "bob")
    run()
    state = sources.ldap_state()
    assert state["high_water"] and state["last_full"]

    # modifyTimestamp has one-second steps and the mark is inclusive (an entry changed later in
    # the mark's own second is not missed), so wait for the next second before each change
    time.sleep(1.1)
    modify(ldap_dir, ann, departmentNumber="Search")
    outcome = run()

    assert outcome.full is False
    assert outcome.result.counts["moved"] == 1
    user = User.objects.get(email="ann@corp.test")
    assert user.team.slug == "search"
    move = TeamMove.objects.get(user=user)
    assert (move.from_team.slug, move.to_team.slug) == ("payments", "search")
    assert sources.ldap_state()["high_water"] > state["high_water"]

    time.sleep(1.1)
    modify(ldap_dir, ann, cn="Ann Renamed")
    renamed = run()

    assert [r.values["email"] for r in renamed.read.input.rows] == ["ann@corp.test"]
    assert renamed.result.counts["updated"] == 1
    assert User.objects.get(email="ann@corp.test").name == "Ann Renamed"


def test_disabled_account_is_a_leaver_in_an_incremental_run(ldap_dir):
    for uid in ("lea", "ann", "bob", "cat", "dan"):
        person(ldap_dir, uid)
    run()
    bob = f"uid=bob,{ldap_dir.people}"
    modify(ldap_dir, bob, businessCategory="disabled")

    outcome = run()

    assert (outcome.full, outcome.result.counts["left"]) == (False, 1)
    user = User.objects.get(email="bob@corp.test")
    assert (user.status, user.is_active) == ("leaver", False)
    assert AuditEvent.objects.filter(action="user.left").count() == 1


def test_a_deleted_entry_leaves_only_in_the_full_run(ldap_dir, clock, settings):
    for uid in ("lea", "ann", "bob", "cat", "dan"):
        person(ldap_dir, uid)
    run()
    delete(ldap_dir, f"uid=bob,{ldap_dir.people}")

    incremental = run()
    assert incremental.full is False
    assert User.objects.get(email="bob@corp.test").is_active is True

    clock.shift(settings.TOLLGATE_LDAP_DIRECTORY_FULL_EVERY + 1)  # the daily full run is due
    full = run()
    assert full.full is True
    assert full.result.counts["left"] == 1
    assert User.objects.get(email="bob@corp.test").status == "leaver"


def test_a_mass_leave_is_held_until_an_operator_confirms_the_count(ldap_dir):
    uids = [f"p{index:02d}" for index in range(12)]
    for uid in uids:
        person(ldap_dir, uid)
    run()
    high_water = sources.ldap_state()["high_water"]
    for uid in uids[:5]:  # e.g. a wrong filter or a truncated OU
        delete(ldap_dir, f"uid={uid},{ldap_dir.people}")
    events = AuditEvent.objects.count()

    held = run(full=True)

    assert held.held is True
    assert User.objects.filter(is_active=True).count() == 12  # nothing applied
    assert AuditEvent.objects.count() == events + 1
    event = AuditEvent.objects.get(action="directory.held")
    assert (event.after["left"], sorted(event.after["leavers"])) == (
        5,
        [f"{uid}@corp.test" for uid in uids[:5]],
    )
    assert sources.ldap_state()["high_water"] == high_water  # not moved: held again next time
    assert run(full=True).held is True
    assert run(full=True, confirm_leavers=4).held is True  # a different count is not confirmed

    confirmed = run(full=True, confirm_leavers=5)

    assert confirmed.held is False
    assert confirmed.result.counts["left"] == 5
    assert User.objects.filter(is_active=True).count() == 7


def test_team_from_group_membership_and_a_move_between_groups_is_incremental(ldap_dir, settings):
    settings.TOLLGATE_LDAP_DIRECTORY = source_config(
        ldap_dir, team_groups_base=ldap_dir.groups, attributes={"team": "ou"}
    )
    ann = person(ldap_dir, "ann")
    bob = person(ldap_dir, "bob")
    ldap_dir.add_group("Team Payments", members=[ann, bob])
    ldap_dir.add_group("Team Search", members=[])
    run()
    assert User.objects.get(email="ann@corp.test").team.slug == "team-payments"

    conn = ldap_dir.admin()
    try:
        conn.modify(f"cn=Team Payments,{ldap_dir.groups}", {"member": [("MODIFY_DELETE", [ann])]})
        conn.modify(f"cn=Team Search,{ldap_dir.groups}", {"member": [("MODIFY_ADD", [ann])]})
    finally:
        conn.unbind()
    outcome = run()

    assert outcome.full is False
    # ann's own entry did not change; her new group did
    assert {r.values["email"] for r in outcome.read.input.rows} >= {"ann@corp.test"}
    assert User.objects.get(email="ann@corp.test").team.slug == "team-search"
    assert User.objects.get(email="bob@corp.test").team.slug == "team-payments"


def test_invalid_entries_refuse_the_run_naming_the_entry_and_nothing_changes(ldap_dir):
    person(ldap_dir, "lea")
    ldap_dir.add_person("nat", mail="not-an-address", cn="Nat", departmentNumber="x")
    with pytest.raises(DirectoryImportError) as error:
        run()
    assert "not a valid e-mail address" in str(error.value.errors[0])
    assert error.value.where(error.value.errors[0].row) == f"uid=nat,{ldap_dir.people}"
    assert User.objects.count() == 0
    assert sources.ldap_state() == {}


def test_command_dry_run_prints_and_writes_nothing_then_applies(ldap_dir):
    person(ldap_dir, "ann")
    out = io.StringIO()
    call_command("import_directory", "--ldap", "--dry-run", stdout=out)
    assert "+ person ann@corp.test" in out.getvalue()
    assert User.objects.count() == 0

    out = io.StringIO()
    call_command("import_directory", "--ldap", stdout=out)
    assert "ldap full: 1 rows read; changed: " in out.getvalue()
    assert User.objects.filter(email="ann@corp.test").exists()


def test_command_reports_a_hold_with_the_leavers_and_exit_status_3(ldap_dir):
    for index in range(6):
        person(ldap_dir, f"p{index}")
    call_command("import_directory", "--ldap", stdout=io.StringIO())
    for index in range(3):
        delete(ldap_dir, f"uid=p{index},{ldap_dir.people}")
    out = io.StringIO()
    with pytest.raises(CommandError) as error:
        call_command("import_directory", "--ldap", "--full", stdout=out)
    assert error.value.returncode == 3
    assert "--confirm-leavers 3" in str(error.value)
    assert "- leaver p0@corp.test" in out.getvalue()
    call_command("import_directory", "--ldap", "--full", "--confirm-leavers", "3", stdout=out)
    assert User.objects.filter(is_active=False).count() == 3


def test_command_refuses_a_file_and_ldap_together(ldap_dir):
    with pytest.raises(CommandError, match="not both"):
        call_command("import_directory", "x.csv", "--ldap")
    with pytest.raises(CommandError, match="goes with --ldap"):
        call_command("import_directory", "x.csv", "--confirm-leavers", "2")


def test_the_scheduled_task_runs_the_source(ldap_dir):
    person(ldap_dir, "ann")
    ldap_directory_sync()
    assert User.objects.filter(email="ann@corp.test").exists()


def test_unreachable_server_and_missing_password_change_nothing(ldap_dir, settings, monkeypatch):
    person(ldap_dir, "ann")
    config = source_config(ldap_dir, url=f"ldap://127.0.0.1:{slapd_support.free_port()}")
    with pytest.raises(TransientError):
        run(config=config)
    monkeypatch.delenv("TOLLGATE_LDAP_TEST_PASSWORD")
    with pytest.raises(ConfigError, match="TOLLGATE_LDAP_TEST_PASSWORD is not set"):
        run()
    ldap_directory_sync()  # logs, does not raise
    assert User.objects.count() == 0
    assert sources.ldap_state() == {}


def test_source_config_is_checked():
    base = {
        "url": "ldaps://h",
        "bind_dn": "cn=s,dc=t",
        "password_env": "TOLLGATE_X",
        "people_base": "ou=p,dc=t",
    }
    assert SourceConfig.from_mapping(base).attributes["email"] == "mail"
    for bad, message in [
        ({"password_env": "SECRET_KEY"}, "TOLLGATE_"),
        ({"people_filter": "objectClass=*"}, "people_filter"),
        ({"attributes": {"mail": "mail"}}, "attributes maps"),
        ({"attributes": {"email": "mail)(x"}}, "attribute name"),
        ({"default_team": "Not A Slug"}, "default_team"),
        ({"url": "ldaps://h", "security": "plain"}, "does not match"),
    ]:
        with pytest.raises(ConfigError, match=message):
            SourceConfig.from_mapping({**base, **bad})
    with pytest.raises(ConfigError, match="not configured"):
        SourceConfig.from_mapping({})
    assert team_slug(" Data  Platform & Co ") == "data-platform-co"
    assert generalized_date("20261206043000Z").isoformat() == "2026-12-06"
    assert generalized_date("2021-02-03").isoformat() == "2021-02-03"
    assert generalized_date("garbage") is None
