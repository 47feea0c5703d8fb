"""Who acts: a person (a ``User``) or a named system actor — never a bare string.

Services take an ``Actor``. A person's permissions come from their roles; a system actor's come
from the call site, which names the system actors it accepts (``actor_may``), so a system actor
that a service does not expect is refused like a person without the role. A string is refused
outright (``TypeError``): a string used to mean "system" and skipped every permission check.

Tasks carry user ids, never e-mails; a task acting on its own behalf uses its ``SystemActor``.
The audit trail records ``actor_label`` (``system:<name>`` for a system actor).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias, Union

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

_NAME = re.compile(r"^[a-z][a-z0-9_.-]{1,63}$")


@dataclass(frozen=True, slots=True)
class SystemActor:
    """A part of Tollgate (or a tool run by an operator) acting without a person behind it."""

    name: str

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(
                f"system actor name {self.name!r} must be 2-64 lower-case letters, digits, '.', '_' or '-'"
            )

    @property
    def label(self) -> str:
        return f"system:{self.name}"

    def __str__(self) -> str:
        return self.label


Actor: TypeAlias = Union["AbstractBaseUser", SystemActor]


# The system actors Tollgate has. A new one is added here, so the list is the inventory.
REQUEST_SWEEPER = SystemActor("request-sweeper")  # expires and escalates open requests
GRANT_EXPIRY = SystemActor("grant-expiry")  # revokes grants whose time is up
SYNC_SWEEPER = SystemActor("sync-sweeper")  # retries and gives up provisioning
PROVISIONER = SystemActor("provisioner")  # applies grants in downstream systems
RECONCILER = SystemActor("reconciler")  # compares downstream systems with grants
JOINER = SystemActor("joiner")  # birthright grants for new people
LEAVER = SystemActor("leaver")  # removes a leaver's access
MOVER_REVIEW = SystemActor("mover-review")  # reviews access after a team move
DIRECTORY_IMPORT = SystemActor("directory-import")  # people and teams from the directory
SCIM = SystemActor("scim")  # changes pushed by an identity provider over SCIM
SCHEDULER = SystemActor("scheduler")  # periodic jobs started by beat
UNUSED_ACCESS = SystemActor("unused-access")  # removes grants nobody uses
REVIEWS = SystemActor("reviews")  # access-review campaigns
STANDARDS_SCAN = SystemActor("standards-scan")  # periodic policy checks
STANDARDS_IMPORT = SystemActor("standards-import")  # standards loaded from files
ROLE_MINING = SystemActor("role-mining")  # proposed role bundles
RECOMMEND = SystemActor("recommend")  # the access recommender
COSTS = SystemActor("costs")  # cost ingestion and attribution
COST_ANALYTICS = SystemActor("cost-analytics")  # budgets, anomalies, suggestions
USAGE = SystemActor("usage")  # usage-event ingestion
CLI = SystemActor("cli")  # a management command run by an operator
DEMO = SystemActor("demo")  # demo data (dev only)
BENCH = SystemActor("bench")  # benchmarks
TEST = SystemActor("test")  # the test suite
AUTO_APPROVAL = SystemActor("auto-approval")  # approves what a policy rule allows
SLACK = SystemActor("slack")  # the Slack bot: links people by e-mail, delivers messages
GITOPS = SystemActor("gitops")  # configuration applied from a repository (config_apply)
ONCALL = SystemActor("oncall")  # grants that follow an on-call rota
ASSIGNMENT_RULES = SystemActor("assignment-rules")  # bundles granted by assignment rules


def scim_client_actor(slug: str) -> SystemActor:
    """The actor of one SCIM client (``scim.<slug>``): a member of the SCIM family, so the audit
    trail names the identity provider that pushed the change."""
    return SystemActor(f"{SCIM.name}.{slug}")


def is_scim_actor(actor: object) -> bool:
    """True for ``SCIM`` and every SCIM client's actor (``scim.<slug>``), nothing else; a
    string raises ``TypeError``."""
    refuse_string(actor)
    return isinstance(actor, SystemActor) and (
        actor == SCIM or actor.name.startswith(SCIM.name + ".")
    )


@dataclass(frozen=True, slots=True)
class GitopsActor(SystemActor):
    """The actor of one configuration repository (``gitops.<name>``): a member of the GITOPS
    family, audited as ``gitops:<name>`` so the trail names the repository that applied it."""

    @property
    def label(self) -> str:
        return f"gitops:{self.name.removeprefix(GITOPS.name + '.')}"


def gitops_actor(name: str) -> GitopsActor:
    """The actor that applies configuration from the repository called ``name``."""
    return GitopsActor(f"{GITOPS.name}.{name}")


def is_gitops_actor(actor: object) -> bool:
    """True for ``GITOPS`` and every repository's actor (``gitops.<name>``); a string raises."""
    refuse_string(actor)
    return isinstance(actor, SystemActor) and (
        actor == GITOPS or actor.name.startswith(GITOPS.name + ".")
    )


def refuse_string(value: object) -> None:
    """Raise ``TypeError`` when an actor is a string (the old way of saying "system")."""
    if isinstance(value, str):
        raise TypeError(
            f"actor {value!r} is a string; pass a User or a portal.core.actors.SystemActor"
        )


def is_system(actor: object) -> bool:
    """True for a system actor, False for a person or None; a string raises ``TypeError``."""
    refuse_string(actor)
    return isinstance(actor, SystemActor)


def actor_may(
    actor: Actor | AnonymousUser | None,
    person_check: Callable[[Any], bool],
    *,
    systems: Collection[SystemActor] = (),
) -> bool:
    """Whether ``actor`` may act: a person by ``person_check``, a system actor if it is one of
    ``systems`` (the ones the call site expects; naming ``SCIM`` admits every SCIM client's
    actor, naming ``GITOPS`` every repository's). None and strings are refused."""
    refuse_string(actor)
    if actor is None:
        return False
    if isinstance(actor, SystemActor):
        # A call site that accepts SCIM accepts each SCIM client (its family); no other
        # system actor stands in for another.
        return (
            actor in systems
            or (SCIM in systems and is_scim_actor(actor))
            or (GITOPS in systems and is_gitops_actor(actor))
        )
    return bool(person_check(actor))


def actor_label(actor: object) -> str:
    """How the audit trail and logs name an actor: ``system:<name>`` or the username."""
    refuse_string(actor)
    if actor is None:
        return "system"
    if isinstance(actor, SystemActor):
        return actor.label
    if getattr(actor, "is_authenticated", False):
        return str(actor.get_username())  # type: ignore[attr-defined]
    return "anonymous"


def actor_user(actor: object) -> Any | None:
    """The person behind ``actor``, or None for a system actor (or nobody)."""
    refuse_string(actor)
    if actor is None or isinstance(actor, SystemActor):
        return None
    return actor
