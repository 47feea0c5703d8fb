"""Every write of the SCIM app. People and teams change only through the accounts directory
service (the same one ``import_directory`` runs), as the SCIM client's actor
(``system:scim.<slug>``); this app writes its own rows (clients, SCIM ids, held changes) in
the same transaction."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.directory import DirectoryImportError
from accounts.hold import leavers_over_share
from accounts.models import Membership, Team, User
from accounts.services import UNSET, directory_people_apply, directory_team_apply
from audit.services import audit_record
from portal.core.actors import actor_user, scim_client_actor
from portal.core.errors import Conflict, NotFound, NotPermitted, ValidationError

from . import registry as actions
from .errors import ScimError, invalid_value, uniqueness
from .mapping import GroupInput, UserInput
from .models import PREFIX_LENGTH, HeldChange, ScimClient, ScimGroup, ScimUser
from .policies import may_manage_scim

TOKEN_MARKER = "tgscim_"  # noqa: S105  (a public marker that secret scanners can spot)
TOUCH_EVERY_SECONDS = 60


def hash_secret(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def _new_secret() -> tuple[str, str, str]:
    plaintext = TOKEN_MARKER + secrets.token_urlsafe(32)
    return plaintext, plaintext[:PREFIX_LENGTH], hash_secret(plaintext)


# --- Clients --------------------------------------------------------------------------


def scim_client_create(*, actor, name: str) -> tuple[ScimClient, str]:
    """A new SCIM client and its bearer token (returned once; only its hash is kept)."""
    if not may_manage_scim(actor):
        raise NotPermitted("only platform admins create SCIM clients")
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationError("give the client a name of 1 to 100 characters", field="name")
    slug = slugify(name)[:40].strip("-")
    if not slug or not slug[0].isalpha():
        raise ValidationError("the name must start with a letter", field="name")
    plaintext, prefix, digest = _new_secret()
    person = actor_user(actor)
    try:
        with transaction.atomic():
            client = ScimClient.objects.create(
                name=name, slug=slug, prefix=prefix, key_hash=digest, created_by=person
            )
            audit_record(
                actor=actor,
                action=actions.CLIENT_CREATED,
                target=client,
                after={"name": name, "slug": slug, "prefix": prefix},
            )
    except IntegrityError:
        raise Conflict(f"a SCIM client named {name!r} exists already") from None
    return client, plaintext


def _locked_client(client_id: int) -> ScimClient:
    client = ScimClient.objects.select_for_update().filter(pk=client_id).first()
    if client is None:
        raise NotFound("no such SCIM client")
    return client


def scim_client_rotate(*, actor, client_id: int) -> tuple[ScimClient, str]:
    """A new token for the client; the old one stops working at once."""
    if not may_manage_scim(actor):
        raise NotFound("no such SCIM client")
    plaintext, prefix, digest = _new_secret()
    with transaction.atomic():
        client = _locked_client(client_id)
        if client.revoked_at is not None:
            raise Conflict("this SCIM client is revoked")
        before = {"prefix": client.prefix}
        client.prefix, client.key_hash, client.rotated_at = prefix, digest, timezone.now()
        client.save(update_fields=["prefix", "key_hash", "rotated_at"])
        audit_record(
            actor=actor,
            action=actions.CLIENT_ROTATED,
            target=client,
            before=before,
            after={"prefix": prefix},
        )
    return client, plaintext


def scim_client_revoke(*, actor, client_id: int) -> ScimClient:
    if not may_manage_scim(actor):
        raise NotFound("no such SCIM client")
    with transaction.atomic():
        client = _locked_client(client_id)
        if client.revoked_at is not None:
            raise Conflict("this SCIM client is already revoked")
        client.revoked_at = timezone.now()
        client.save(update_fields=["revoked_at"])
        audit_record(
            actor=actor,
            action=actions.CLIENT_REVOKED,
            target=client,
            before={"revoked_at": None},
            after={"revoked_at": client.revoked_at, "name": client.name},
        )
    return client


def scim_client_touch(*, client: ScimClient) -> None:
    """Stamp ``last_used_at`` at most once a minute (bookkeeping, not audited)."""
    now = timezone.now()
    if client.last_used_at and (now - client.last_used_at).total_seconds() < TOUCH_EVERY_SECONDS:
        return
    ScimClient.objects.filter(pk=client.pk).update(last_used_at=now)
    client.last_used_at = now


def scim_rate_check(*, client: ScimClient) -> int | None:
    """Count the request against the client's per-minute budget; seconds to wait when over.

    The first refused request of a minute is audited. Redis down: not limited (logged)."""
    limit = settings.TOLLGATE_SCIM_RATE_PER_MINUTE
    window = int(timezone.now().timestamp() // 60)
    key = f"scim:rate:{client.pk}:{window}"
    try:
        cache.add(key, 0, timeout=120)
        used = cache.incr(key)
    except Exception:  # noqa: BLE001 - the cache is not the source of truth
        return None
    if used <= limit:
        return None
    if used == limit + 1:
        audit_record(
            actor=scim_client_actor(client.slug),
            action=actions.RATE_LIMITED,
            target=client,
            after={"limit_per_minute": limit},
        )
    return 60 - int(timezone.now().timestamp()) % 60


# --- People ---------------------------------------------------------------------------


def _client_actor(client: ScimClient):
    if client.revoked_at is not None:
        raise NotPermitted("this SCIM client is revoked")
    return scim_client_actor(client.slug)


def _directory_error(exc: DirectoryImportError) -> ScimError:
    return invalid_value("; ".join(e.reason for e in exc.errors) or exc.message)


@dataclass(frozen=True)
class PersonWritten:
    """What a write of one person did: their id (None when held), the held change, and for a
    person this call created, their row, SCIM row and groups (team id, name) as written, read
    back without a query."""

    user_id: int | None
    held: HeldChange | None = None
    created: tuple[User, ScimUser, list[tuple[int, str]]] | None = None


# The SCIM row (upserted: ``created`` is kept when the row exists) and the person's groups as
# the transaction left them, in one statement (PostgreSQL: the groups are what the 201 body
# lists, read after the directory service and its joiner hooks wrote the memberships).
_UPSERT_SQL = """
WITH scim_row AS (
    INSERT INTO {scim_user} ({columns}) VALUES ({values})
    ON CONFLICT ({user_id}) DO UPDATE SET {updates}
    RETURNING {user_id}
)
SELECT m.team_id, t.name FROM {membership} m JOIN {team} t ON t.id = m.team_id
WHERE m.user_id = %s ORDER BY t.name
"""
_UPSERT_FIELDS = (
    "user",
    "external_id",
    "employee_number",
    "cost_center",
    "created",
    "last_modified",
    "client",
    "deleted_at",
)
_UPDATED_FIELDS = _UPSERT_FIELDS[1:4] + _UPSERT_FIELDS[5:]  # all but the key and ``created``


def _scim_user_write(row: ScimUser) -> list[tuple[int, str]]:
    """Upsert ``row`` (``created`` is kept when it exists); the person's groups, by name."""
    if connection.vendor != "postgresql":  # no data-modifying WITH: two statements
        ScimUser.objects.bulk_create(
            [row],
            update_conflicts=True,
            unique_fields=["user"],
            update_fields=list(_UPDATED_FIELDS),
        )
        groups = Membership.objects.filter(user_id=row.user_id).order_by("team__name")
        return list(groups.values_list("team_id", "team__name"))
    qn = connection.ops.quote_name
    by_name = {f.name: f for f in ScimUser._meta.concrete_fields}
    fields = [by_name[name] for name in _UPSERT_FIELDS]
    column = {f.name: qn(str(f.column)) for f in fields}
    sql = _UPSERT_SQL.format(
        scim_user=qn(ScimUser._meta.db_table),
        membership=qn(Membership._meta.db_table),
        team=qn(Team._meta.db_table),
        user_id=column["user"],
        columns=", ".join(column[name] for name in _UPSERT_FIELDS),
        values=", ".join(["%s"] * len(fields)),
        updates=", ".join(f"{column[n]} = EXCLUDED.{column[n]}" for n in _UPDATED_FIELDS),
    )
    values = [f.get_db_prep_save(getattr(row, f.attname), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, row.user_id])
        return [(team_id, name) for team_id, name in cursor.fetchall()]


def _write_person(
    *,
    client: ScimClient,
    data: UserInput,
    operation: str,
    actor,
    hold: bool,
    deleted: bool = False,
    reason: str = "",
    check=None,
) -> PersonWritten:
    """Apply one person's row through the directory service; the SCIM row in the same
    transaction."""
    now = timezone.now()
    email = data.row["email"]
    written: list[PersonWritten] = []

    def after(plan, people: dict[str, User]) -> None:
        user = people[email]
        row = ScimUser(
            user=user,
            **data.extras,
            created=now,
            last_modified=now,
            client=client,
            deleted_at=now if deleted else None,
        )
        groups = _scim_user_write(row)
        new = any(c.row.email == email for c in plan.people_created)  # no SCIM row before
        written.append(PersonWritten(user.pk, created=(user, row, groups) if new else None))

    source = f"scim:{client.slug} {operation}" + (f" ({reason})" if reason else "")
    try:
        result = directory_people_apply(
            rows=[data.row],
            actor=actor,
            source=source,
            hold=leavers_over_share if hold else None,
            after=after,
            check=check,
        )
    except DirectoryImportError as exc:
        raise _directory_error(exc) from None
    if result.held:
        return PersonWritten(None, held=_hold(client=client, data=data, operation=operation))
    return written[0]


def _hold(*, client: ScimClient, data: UserInput, operation: str) -> HeldChange:
    with transaction.atomic():
        user = User.objects.filter(email=data.row["email"]).first()
        held, _ = HeldChange.objects.update_or_create(
            email=data.row["email"],
            status=HeldChange.Status.PENDING,
            defaults={
                "client": client,
                "user": user,
                "operation": operation,
                "row": data.row,
                "extras": data.extras,
                "created_at": timezone.now(),
            },
        )
        audit_record(
            actor=scim_client_actor(client.slug),
            action=actions.CHANGE_HELD,
            target=held,
            after={"email": held.email, "operation": operation, "status": data.row["status"]},
            reason="more than the allowed share of people would leave within an hour",
        )
    return held


def scim_user_create(*, client: ScimClient, data: UserInput, operation: str):
    """A joiner (or a SCIM-deleted leaver coming back). 409 when the person exists.

    Checked in the directory service's locked transaction, on the snapshot it reads anyway:
    a new person costs no query, and two concurrent POSTs of one userName cannot both pass."""
    actor = _client_actor(client)
    email = data.row["email"]

    def check(people) -> None:
        if email not in people:
            return  # a new person
        gone = ScimUser.objects.filter(user__email__iexact=email, deleted_at__isnull=False).exists()
        if not gone:
            raise uniqueness(f"userName {email} exists already")

    return _write_person(
        client=client, data=data, operation=operation, actor=actor, hold=True, check=check
    )


def scim_user_replace(*, client: ScimClient, data: UserInput, operation: str):
    """Whatever the new state means for the directory: an update, a mover, a leaver
    (``active`` false; held when too many leave) or a rejoin."""
    actor = _client_actor(client)
    return _write_person(client=client, data=data, operation=operation, actor=actor, hold=True)


def scim_user_delete(*, client: ScimClient, data: UserInput, operation: str):
    """DELETE: the person leaves (held when too many leave) and is gone from SCIM."""
    actor = _client_actor(client)
    data.row["status"] = "leaver"
    return _write_person(
        client=client, data=data, operation=operation, actor=actor, hold=True, deleted=True
    )


# --- Held changes ---------------------------------------------------------------------


def held_change_confirm(*, actor, held_id: int) -> HeldChange:
    """Apply a held change through the directory service (as the client that pushed it)."""
    if not may_manage_scim(actor) or actor_user(actor) is None:
        raise NotFound("no such held change")
    with transaction.atomic():
        held = HeldChange.objects.select_for_update().filter(pk=held_id).first()
        if held is None:
            raise NotFound("no such held change")
        if held.status != HeldChange.Status.PENDING:
            raise Conflict("this change was already decided")
    client = held.client
    data = UserInput(row=dict(held.row), extras=dict(held.extras))
    person = actor_user(actor)
    try:
        _write_person(
            client=client,
            data=data,
            operation=held.operation,
            actor=scim_client_actor(client.slug),
            hold=False,
            deleted=held.operation.startswith("DELETE"),
            reason=f"confirmed by {getattr(person, 'email', '')}",
        )
    except ScimError as exc:
        raise ValidationError(exc.detail) from None
    with transaction.atomic():
        held = HeldChange.objects.select_for_update().get(pk=held_id)
        if held.status != HeldChange.Status.PENDING:
            raise Conflict("this change was already decided")
        held.status = HeldChange.Status.APPLIED
        held.decided_at, held.decided_by = timezone.now(), person
        held.save(update_fields=["status", "decided_at", "decided_by"])
        audit_record(
            actor=actor,
            action=actions.HELD_CONFIRMED,
            target=held,
            before={"status": "pending"},
            after={"status": held.status, "email": held.email, "operation": held.operation},
        )
    return held


def held_change_discard(*, actor, held_id: int) -> HeldChange:
    if not may_manage_scim(actor) or actor_user(actor) is None:
        raise NotFound("no such held change")
    with transaction.atomic():
        held = HeldChange.objects.select_for_update().filter(pk=held_id).first()
        if held is None:
            raise NotFound("no such held change")
        if held.status != HeldChange.Status.PENDING:
            raise Conflict("this change was already decided")
        held.status = HeldChange.Status.DISCARDED
        held.decided_at, held.decided_by = timezone.now(), actor_user(actor)
        held.save(update_fields=["status", "decided_at", "decided_by"])
        audit_record(
            actor=actor,
            action=actions.HELD_DISCARDED,
            target=held,
            before={"status": "pending"},
            after={"status": held.status, "email": held.email, "operation": held.operation},
        )
    return held


# --- Teams (Groups) -------------------------------------------------------------------


def _write_team(
    *,
    client: ScimClient,
    team: Team | None,
    slug: str,
    data: GroupInput,
    operation: str,
    deleted: bool = False,
) -> Team:
    actor = _client_actor(client)
    now = timezone.now()
    current: set[int] = set()
    if team is not None:
        current = set(team.memberships.values_list("user_id", flat=True))
    wanted = current if data.members is None else set(data.members)

    def after(saved: Team) -> None:
        ScimGroup.objects.update_or_create(
            team=saved,
            defaults={
                "external_id": data.external_id,
                "last_modified": now,
                "client": client,
                "deleted_at": now if deleted else None,
            },
            create_defaults={
                "external_id": data.external_id,
                "created": now,
                "last_modified": now,
                "client": client,
                "deleted_at": now if deleted else None,
            },
        )

    try:
        saved, _ = directory_team_apply(
            actor=actor,
            slug=slug,
            name=data.name,
            parent=data.parent if data.parent_stated else UNSET,
            members_add=sorted(wanted - current),
            members_remove=sorted(current - wanted),
            source=f"scim:{client.slug} {operation}",
            after=after,
        )
    except ValidationError as exc:
        raise invalid_value(exc.message) from None
    return saved


def scim_group_create(*, client: ScimClient, data: GroupInput, operation: str) -> Team:
    """A team for the group: an existing team of that name (or slug) not linked to a live
    SCIM group is taken over; otherwise a new one. 409 when a live group has that name."""
    _client_actor(client)
    slug = slugify(data.name)[:80].strip("-")
    team = (
        Team.objects.filter(name__iexact=data.name).order_by("pk").first()
        or Team.objects.filter(slug=slug).first()
    )
    if team is not None:
        link = ScimGroup.objects.filter(team=team).first()
        if link is not None and link.deleted_at is None:
            raise uniqueness(f"a Group named {data.name!r} exists already")
        slug = team.slug
    elif not slug:
        raise invalid_value(f"displayName {data.name!r} gives no team slug")
    return _write_team(client=client, team=team, slug=slug, data=data, operation=operation)


def scim_group_replace(*, client: ScimClient, team: Team, data: GroupInput, operation: str):
    return _write_team(client=client, team=team, slug=team.slug, data=data, operation=operation)


def scim_group_delete(*, client: ScimClient, team: Team, operation: str) -> Team:
    """Teams are never deleted: its memberships go (home and lead memberships stay, as with
    any removal) and the group is gone from SCIM."""
    data = GroupInput(name=team.name, external_id="", members=[], parent=None, parent_stated=False)
    return _write_team(
        client=client, team=team, slug=team.slug, data=data, operation=operation, deleted=True
    )
