"""Every write to people and teams. Each service owns its transaction and audits."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from audit import registry as actions
from audit.services import audit_record
from portal.core.actors import (
    CLI,
    DEMO,
    DIRECTORY_IMPORT,
    actor_may,
    actor_user,
    refuse_string,
)
from portal.core.errors import NotPermitted, ValidationError

from .directory.snapshot import UNSET, Loaded, directory_plan, team_cycle
from .models import PlatformRole, User
from .policies import may_change_roles

# Later issues register hooks here (revoke API tokens, revoke grants); each is called
# inside the leaver's transaction with (user=..., actor=...).
LEAVER_HOOKS: list = []
#: Called as ``hook(user=, roles=, actor=)`` in the transaction that removes platform roles
#: (tokens revokes the tokens made while the person held a powerful role).
ROLE_REMOVED_HOOKS: list = []
# Called with (users=[...]) at the start of a transaction that will make those people leave,
# before its first audit event: apps lock the rows their leaver hooks will change, so the
# lock order is always "their rows, then the audit chain head" (as in the sync worker) and
# a leaver import cannot deadlock with a worker recording a job for the same grant.
LEAVER_PREPARE_HOOKS: list = []
# Called with (user=..., team=..., actor=...) inside the directory import's transaction when
# an active person joins a team: created, rejoined, or moved to it (birthright bundles).
JOINER_HOOKS: list = []
# The system actors that set platform and team roles without a person: the directory import,
# an operator's command, the demo seed and the test suite.
ROLE_SYSTEMS = (DIRECTORY_IMPORT, CLI, DEMO)


def _joined(*, user: User, team, actor) -> None:
    if user.is_active and team is not None:
        for hook in JOINER_HOOKS:
            hook(user=user, team=team, actor=actor)


def _prepare_leavers(users) -> None:
    users = [u for u in users if u is not None]
    if users:
        for hook in LEAVER_PREPARE_HOOKS:
            hook(users=users)


def user_end_sessions(*, user: User) -> int:
    """End every session of ``user`` now.

    Bumping ``session_version`` changes the session auth hash, which Django checks on
    each request, so every existing session (any backend) stops authenticating at once.
    Database session rows that belong to the user are also deleted.
    """
    User.objects.filter(pk=user.pk).update(session_version=F("session_version") + 1)
    user.refresh_from_db(fields=["session_version"])
    ended = 0
    uid = str(user.pk)
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.get_decoded().get("_auth_user_id") == uid:
            session.delete()
            ended += 1
    return ended


def user_mark_leaver(*, user: User, actor, reason: str = "", end_date=None) -> User:
    """Deactivate a leaver and end their sessions (plus registered leaver hooks)."""
    refuse_string(actor)
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        if user.status == User.Status.LEAVER and not user.is_active:
            return user
        before = {"status": user.status, "is_active": user.is_active, "end_date": user.end_date}
        user.status = User.Status.LEAVER
        user.is_active = False
        user.end_date = end_date or user.end_date or timezone.localdate()
        user.save(update_fields=["status", "is_active", "end_date"])
        sessions = user_end_sessions(user=user)
        for hook in LEAVER_HOOKS:
            hook(user=user, actor=actor)
        audit_record(
            actor=actor,
            action=actions.USER_LEFT,
            target=user,
            before=before,
            after={
                "status": user.status,
                "is_active": False,
                "end_date": user.end_date,
                "sessions_ended": sessions,
            },
            reason=reason or "leaver",
        )
    return user


def user_set_roles(*, actor, user: User, roles: list[str], reason: str = "") -> list[str]:
    """Replace the user's platform roles. Only platform admins may; nobody edits their own."""
    if not actor_may(actor, may_change_roles, systems=ROLE_SYSTEMS):
        raise NotPermitted("only platform admins change roles")
    person = actor_user(actor)
    if person is not None and person.pk == user.pk:
        raise NotPermitted("nobody changes their own platform roles")
    valid = {r.value for r in PlatformRole}
    unknown = sorted(set(roles) - valid)
    if unknown:
        raise ValidationError(
            f"unknown role(s): {', '.join(unknown)}; valid: {', '.join(sorted(valid))}",
            field="roles",
        )
    with transaction.atomic():
        before = sorted(user.groups.filter(name__in=valid).values_list("name", flat=True))
        after = sorted(set(roles))
        if before == after:
            return after
        groups = [Group.objects.get_or_create(name=name)[0] for name in after]
        user.groups.remove(*user.groups.filter(name__in=valid))
        user.groups.add(*groups)
        if hasattr(user, "_tollgate_roles"):
            del user._tollgate_roles
        audit_record(
            actor=actor,
            action=actions.USER_ROLES_CHANGED,
            target=user,
            before={"roles": before},
            after={"roles": after},
            reason=reason,
        )
        removed = sorted(set(before) - set(after))
        if removed:
            for hook in ROLE_REMOVED_HOOKS:
                hook(user=user, roles=removed, actor=actor)
    return after


# --- Team memberships -----------------------------------------------------------------


def membership_set_role(*, actor, team, user: User, role: str, reason: str = ""):
    """Make ``user`` a member or lead of ``team`` (creating the membership if needed)."""
    from .models import Membership

    if not actor_may(actor, may_change_roles, systems=ROLE_SYSTEMS):
        raise NotPermitted("only platform admins change team roles")
    if role not in Membership.Role.values:
        raise ValidationError(f"unknown team role {role!r}", field="role")
    with transaction.atomic():
        membership = Membership.objects.select_for_update().filter(team=team, user=user).first()
        if membership is not None and membership.role == role:
            return membership
        before = None if membership is None else {"role": membership.role}
        if membership is None:
            membership = Membership.objects.create(team=team, user=user, role=role)
        else:
            membership.role = role
            membership.save(update_fields=["role"])
        audit_record(
            actor=actor,
            action=actions.MEMBERSHIP_CHANGED,
            target=membership,
            before=before,
            after={"team": team.slug, "user": user.email, "role": role},
            reason=reason,
        )
    return membership


# --- Directory import (A8) ------------------------------------------------------------

# Serialises imports on PostgreSQL (two imports planned against the same snapshot
# would otherwise both apply). SQLite serialises writers on its own.
DIRECTORY_IMPORT_LOCK = 7_461_201_001


def _directory_apply(plan, *, actor, reason: str, loaded: Loaded) -> dict[str, User]:
    """Apply ``plan``; returns the people written or read, by lower-case e-mail. ``loaded``:
    what the snapshot of the same transaction read (not read again)."""
    from django.db.models.functions import Lower

    from .models import Membership, Team, TeamMove

    slugs = {t.parent for t in plan.teams_created} | {t.slug for t in plan.teams_reparented}
    slugs |= {t.new_parent for t in plan.teams_reparented}
    slugs |= {c.row.team for c in plan.people_created}
    slugs |= {s for c in plan.people_changed if c.move for s in c.move}
    slugs -= {None}
    teams = {slug: loaded.teams[slug] for slug in slugs if slug in loaded.teams}
    if slugs - set(teams):
        teams.update((team.slug, team) for team in Team.objects.filter(slug__in=slugs - set(teams)))
    for item in plan.teams_created:
        team = Team.objects.create(
            slug=item.slug, name=item.name, parent=teams[item.parent] if item.parent else None
        )
        teams[team.slug] = team
        audit_record(
            actor=actor,
            action=actions.TEAM_CREATED,
            target=team,
            after={"slug": team.slug, "name": team.name, "parent": item.parent},
            reason=reason,
        )
    for item in plan.teams_reparented:
        team = teams[item.slug]
        team.parent = teams[item.new_parent] if item.new_parent else None
        team.save(update_fields=["parent"])
        audit_record(
            actor=actor,
            action=actions.TEAM_UPDATED,
            target=team,
            before={"parent": item.old_parent},
            after={"parent": item.new_parent},
            reason=reason,
        )

    wanted = {c.row.email for c in plan.people_created} | {c.email for c in plan.people_changed}
    wanted |= {c.row.manager_email for c in plan.people_created if c.row.manager_email}
    wanted |= {
        c.fields["manager"][1]
        for c in plan.people_changed
        if "manager" in c.fields and c.fields["manager"][1]
    }
    users: dict[str, User] = {}
    if loaded.people is not None:  # a scoped push: the snapshot read every person it names
        users = {email: loaded.people[email] for email in wanted if email in loaded.people}
        wanted -= {c.row.email for c in plan.people_created}
    if wanted - set(users):
        users.update(
            (u.email.lower(), u)
            for u in User.objects.annotate(email_lower=Lower("email")).filter(
                email_lower__in=wanted - set(users)
            )
        )

    created = []
    for item in plan.people_created:
        row = item.row
        user = User(
            email=row.email,
            name=row.name,
            worker_type=row.worker_type,
            status=row.status,
            is_active=row.status == User.Status.ACTIVE,
            start_date=row.start_date,
            end_date=row.end_date,
            team=teams[row.team],
            # A manager already there is set in the insert; one created by this import, below.
            manager=users.get(row.manager_email) if row.manager_email else None,
        )
        user.set_unusable_password()  # people sign in through SSO, or get a password set
        user.save()
        users[row.email] = user
        if user.is_active:
            Membership.objects.create(team=user.team, user=user, role=Membership.Role.MEMBER)
        created.append((user, row))
    for user, row in created:
        if row.manager_email and user.manager_id is None:
            user.manager = users[row.manager_email]
            user.save(update_fields=["manager"])
        audit_record(
            actor=actor,
            action=actions.USER_CREATED,
            target=user,
            after={
                "email": row.email,
                "name": row.name,
                "team": row.team,
                "manager": row.manager_email,
                "worker_type": row.worker_type,
                "status": row.status,
                "start_date": row.start_date,
                "end_date": row.end_date,
                "membership": row.team if user.is_active else None,
            },
            reason=reason,
        )
        _joined(user=user, team=user.team, actor=actor)

    for change in plan.people_changed:
        user = users[change.email]
        if change.rejoin:
            before = {"status": user.status, "is_active": user.is_active, "end_date": user.end_date}
            user.status = User.Status.ACTIVE
            user.is_active = True
            user.end_date = change.row.end_date
            user.save(update_fields=["status", "is_active", "end_date"])
            audit_record(
                actor=actor,
                action=actions.USER_REJOINED,
                target=user,
                before=before,
                after={"status": user.status, "is_active": True, "end_date": user.end_date},
                reason=reason,
            )
            if not change.move:
                _joined(user=user, team=user.team, actor=actor)
        if change.fields:
            for name, (_, new) in change.fields.items():
                if name == "manager":
                    user.manager = users[new] if new else None
                else:
                    setattr(user, name, new)
            user.save(update_fields=list(change.fields))
            audit_record(
                actor=actor,
                action=actions.USER_UPDATED,
                target=user,
                before={name: old for name, (old, _) in change.fields.items()},
                after={name: new for name, (_, new) in change.fields.items()},
                reason=reason,
            )
        if change.move:
            old_slug, new_slug = change.move
            old_team, new_team = teams.get(old_slug) if old_slug else None, teams[new_slug]
            user.team = new_team
            user.save(update_fields=["team"])
            move = TeamMove.objects.create(user=user, from_team=old_team, to_team=new_team)
            # The old home membership goes unless it carries a lead role (not a directory
            # attribute: leads are set in Tollgate and kept until changed there).
            removed = 0
            if old_team is not None:
                removed, _ = Membership.objects.filter(
                    user=user, team=old_team, role=Membership.Role.MEMBER
                ).delete()
            added = False
            if change.row.status == User.Status.ACTIVE:
                _, added = Membership.objects.get_or_create(
                    team=new_team, user=user, defaults={"role": Membership.Role.MEMBER}
                )
            audit_record(
                actor=actor,
                action=actions.USER_MOVED,
                target=user,
                before={"team": old_slug},
                after={
                    "team": new_slug,
                    "move_id": move.pk,
                    "membership_removed": old_slug if removed else None,
                    "membership_added": new_slug if added else None,
                },
                reason=reason,
            )
            _joined(user=user, team=new_team, actor=actor)
        if change.add_home_membership:
            membership, _ = Membership.objects.get_or_create(
                team=user.team, user=user, defaults={"role": Membership.Role.MEMBER}
            )
            audit_record(
                actor=actor,
                action=actions.MEMBERSHIP_CHANGED,
                target=membership,
                before=None,
                after={"team": user.team.slug, "user": user.email, "role": membership.role},
                reason=reason,
            )
        if change.leave:
            user_mark_leaver(
                user=user,
                actor=actor,
                reason=f"{reason}: {change.leave_reason}",
                end_date=change.row.end_date if change.row else None,
            )
    return users


def directory_import(*, rows, full: bool, dry_run: bool, actor, source: str = "", hold=None):
    """Apply an HR directory file: joiners, movers, leavers and team changes.

    ``rows`` is an :class:`accounts.directory.DirectoryInput` (from ``read_path``) or a
    list of dicts with the directory columns. Every row is validated before anything
    is written; any error raises :class:`accounts.directory.DirectoryImportError`
    listing all of them, and nothing changes. Only changed fields are written and
    audited, so a second run of the same file writes nothing. ``full`` makes active
    people missing from the file leavers. ``dry_run`` computes the same diff and
    writes nothing. ``hold(plan)`` as in :func:`directory_people_apply` (the LDAP source's
    mass-leave hold). Returns a :class:`accounts.directory.DirectoryImportResult`.
    """
    return _directory_run(
        rows=rows, full=full, dry_run=dry_run, actor=actor, source=source, hold=hold
    )


def directory_people_apply(*, rows, actor, source: str, hold=None, after=None, check=None):
    """The directory service for a push of a few people (SCIM): the same validation, plan,
    joiners (standard bundle), movers, leavers (hooks: grants through the outbox, tokens,
    sessions), transaction, lock and audit events as :func:`directory_import` of a partial
    file with the same rows, but a snapshot of only the people named and their managers.

    ``check(people)`` is called inside the locked transaction with the snapshot of the people
    named (``PersonState`` by lower-case e-mail; absent: not in Tollgate), before validation;
    it may raise to refuse the change (nothing is written). ``hold(plan)`` is asked inside the
    locked transaction, after planning; when it answers True nothing is applied (the caller
    keeps the change for a person to confirm) and the result says ``held``. ``after(plan,
    people)`` is called in the same transaction once the plan is applied (also when it
    changed nothing), for the caller's own rows; ``people`` maps the lower-case e-mail of each
    person named (and of their managers) to their row as this transaction wrote or read it (a
    person created here has their team and manager set). The caller checks who the actor is;
    this service does not.
    """
    return _directory_run(
        rows=rows,
        full=False,
        dry_run=False,
        actor=actor,
        source=source,
        scoped=True,
        hold=hold,
        after=after,
        check=check,
    )


def _directory_lock() -> None:
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [DIRECTORY_IMPORT_LOCK])


def _directory_run(
    *,
    rows,
    full: bool,
    dry_run: bool,
    actor,
    source: str,
    scoped: bool = False,
    hold=None,
    after=None,
    check=None,
):
    from . import directory

    refuse_string(actor)
    inp = directory.as_input(rows)
    if dry_run:
        plan = directory_plan(inp, full=full, scoped=scoped)
        return directory.DirectoryImportResult(plan=plan, rows=len(inp.rows), dry_run=True)
    reason = f"directory import{f' of {source}' if source else ''}{' (full)' if full else ''}"
    loaded = Loaded()
    with transaction.atomic(durable=True):
        _directory_lock()
        plan = directory_plan(inp, full=full, scoped=scoped, loaded=loaded, check=check)
        if plan.changed and hold is not None and hold(plan):
            return directory.DirectoryImportResult(
                plan=plan, rows=len(inp.rows), dry_run=False, held=True
            )
        people = loaded.people or {}
        if plan.changed:
            leaver_emails = [c.email for c in plan.people_changed if c.leave]
            if leaver_emails:
                _prepare_leavers(list(User.objects.filter(email__in=leaver_emails).order_by("pk")))
            people = _directory_apply(plan, actor=actor, reason=reason, loaded=loaded)
            audit_record(
                actor=actor,
                action=actions.DIRECTORY_IMPORTED,
                target_type="accounts.directory",
                target_id="",
                after={**plan.counts(), "rows": len(inp.rows), "full": full, "source": source},
                reason=reason,
            )
        if after is not None:
            after(plan, people)
    return directory.DirectoryImportResult(plan=plan, rows=len(inp.rows), dry_run=False)


def directory_team_apply(
    *,
    actor,
    slug: str,
    name: str | None = None,
    parent: object = UNSET,
    members_add=(),
    members_remove=(),
    source: str,
    after=None,
):
    """The directory service for one team (a SCIM group): created when new, renamed, moved
    under another team (``parent``: a Team, None for top level, ``UNSET`` to keep), and
    member memberships added or removed, with the directory's audit events (``team.created``,
    ``team.updated``, one ``team.membership_changed`` on the team listing who was added and
    removed) and its lock.

    ``members_add`` / ``members_remove`` are user ids. A person is never removed from their
    home team, and a ``lead`` membership is kept (leads are set in Tollgate, as with the
    import); leavers are not added. ``after(team)`` is called in the same transaction, for
    the caller's own rows. Returns ``(team, counts)``. The caller checks the actor.
    """
    from . import directory
    from .models import Membership, Team

    refuse_string(actor)
    if not directory.reading._SLUG_RE.match(slug) or len(slug) > directory.reading._MAX_SLUG:
        raise ValidationError(f"{slug!r} is not a team slug", field="slug")
    if name is not None:
        name = name.strip()
        if not name or len(name) > 200:
            raise ValidationError("a team name is 1 to 200 characters", field="name")
    reason = f"directory import of {source}" if source else "directory import"
    counts = dict.fromkeys(
        ("teams_created", "teams_updated", "memberships_added", "memberships_removed"), 0
    )
    with transaction.atomic(durable=True):
        _directory_lock()
        team = Team.objects.select_for_update().filter(slug=slug).first()
        new_parent = parent if parent is not UNSET else None
        if team is None:
            team = Team.objects.create(
                slug=slug, name=name or directory.team_name_from_slug(slug), parent=new_parent
            )
            counts["teams_created"] += 1
            audit_record(
                actor=actor,
                action=actions.TEAM_CREATED,
                target=team,
                after={
                    "slug": team.slug,
                    "name": team.name,
                    "parent": new_parent.slug if new_parent else None,
                },
                reason=reason,
            )
        else:
            before: dict = {}
            changed: dict = {}
            if name is not None and name != team.name:
                before["name"], changed["name"] = team.name, name
                team.name = name
            if parent is not UNSET and team.parent_id != (new_parent.pk if new_parent else None):
                if new_parent is not None and team_cycle(team, new_parent):
                    raise ValidationError(
                        f"team cycle: {new_parent.slug} is {team.slug} or below it", field="parent"
                    )
                before["parent"] = team.parent.slug if team.parent_id else None
                changed["parent"] = new_parent.slug if new_parent else None
                team.parent = new_parent
            if changed:
                team.save(update_fields=[k for k in ("name", "parent") if k in changed])
                counts["teams_updated"] += 1
                audit_record(
                    actor=actor,
                    action=actions.TEAM_UPDATED,
                    target=team,
                    before=before,
                    after=changed,
                    reason=reason,
                )
        add_ids = sorted(set(members_add) - set(members_remove))
        added_emails: list[str] = []
        removed_emails: list[str] = []
        if add_ids:
            have = set(
                Membership.objects.filter(team=team, user_id__in=add_ids).values_list(
                    "user_id", flat=True
                )
            )
            people = User.objects.filter(pk__in=set(add_ids) - have, is_active=True)
            new = [
                Membership(team=team, user=person, role=Membership.Role.MEMBER)
                for person in people.order_by("pk")
            ]
            Membership.objects.bulk_create(new)
            counts["memberships_added"] = len(new)
            added_emails = [m.user.email for m in new]
        if members_remove:
            gone = list(
                Membership.objects.select_for_update()
                .filter(team=team, user_id__in=set(members_remove), role=Membership.Role.MEMBER)
                .exclude(user__team_id=team.pk)
                .select_related("user")
                .order_by("user_id")
            )
            counts["memberships_removed"] = len(gone)
            removed_emails = [m.user.email for m in gone]
            Membership.objects.filter(pk__in=[m.pk for m in gone]).delete()
        if added_emails or removed_emails:
            # One event for the team's membership change (a group push may add thousands).
            audit_record(
                actor=actor,
                action=actions.MEMBERSHIP_CHANGED,
                target=team,
                before={"team": team.slug, "removed": removed_emails} if removed_emails else None,
                after={"team": team.slug, "role": "member", "added": added_emails}
                if added_emails
                else None,
                reason=reason,
            )
        if any(counts.values()):
            audit_record(
                actor=actor,
                action=actions.DIRECTORY_IMPORTED,
                target_type="accounts.directory",
                target_id="",
                after={**counts, "team": team.slug, "source": source},
                reason=reason,
            )
        if after is not None:
            after(team)
    return team, counts
