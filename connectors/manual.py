"""Manual / ticket connector: a person carries out the change and confirms it in the UI.

Service ``connector_config``::

    {
      "group": "dba-oncall",          # required: the group whose members complete the task
      "instructions": "Add the user to the LDAP group …",  # shown on the task
      "remind_after_hours": 24        # reminder cadence for open tasks (default 24)
    }

Contract with the provisioning outbox (which owns the task model):

* ``grant`` and ``revoke`` change nothing themselves and return
  ``Result(changed=False, status="pending_manual", detail=<what to do>)``. They never fail
  for lack of anything downstream and are safe to call again.
* On ``pending_manual`` the outbox keeps the sync job open (not failed, not retried) and
  creates one manual task per job, keyed by the job's idempotency key, so a redelivered job
  never creates a second task. The task names ``describe().notes`` / :meth:`task_for`'s group
  and instructions, and is reminded every ``remind_after_hours``.
* A member of ``group`` answers the task: "done" completes the job (the grant becomes
  active, or revoked); "cannot" (with a reason) fails the job permanently, which is then
  visible, audited and alerted like any other permanent failure.
* The connector cannot see the downstream system: ``list_holders`` and ``last_used`` raise
  :class:`~connectors.base.NotSupported`, and reconciliation skips manual services.
"""

from __future__ import annotations

from dataclasses import dataclass

from connectors.base import (
    PENDING_MANUAL,
    ConfigError,
    Connector,
    ConnectorDescription,
    EntitlementRef,
    PrincipalRef,
    ResourceType,
    Result,
)


@dataclass(frozen=True)
class ManualTaskSpec:
    """What the outbox needs to create the human task for a pending job."""

    group: str
    title: str
    instructions: str
    remind_after_hours: int


class ManualConnector(Connector):
    name = "manual"
    required_keys = ("group",)
    supports_list_holders = False
    supports_last_used = False

    def __init__(self, config=None):
        super().__init__(config)
        if not isinstance(self.config["group"], str):
            raise ConfigError("manual connector: group must be a group name")
        self.group: str = self.config["group"]
        self.instructions: str = str(self.config.get("instructions", ""))
        hours = self.config.get("remind_after_hours", 24)
        if not isinstance(hours, int) or isinstance(hours, bool) or hours < 1:
            raise ConfigError("manual connector: remind_after_hours must be a positive integer")
        self.remind_after_hours = hours

    def describe(self) -> ConnectorDescription:
        return ConnectorDescription(
            name=self.name,
            resource_types=(ResourceType("manual", f"carried out by {self.group}"),),
            supports_list_holders=False,
            supports_last_used=False,
            manual=True,
            notes=f"members of {self.group} carry out each change and confirm it",
        )

    def task_for(
        self, operation: str, principal: PrincipalRef, entitlement: EntitlementRef
    ) -> ManualTaskSpec:
        verb = {"grant": "Grant", "revoke": "Revoke"}[operation]
        preposition = "to" if operation == "grant" else "from"
        title = (
            f"{verb} {entitlement.service_slug}/{entitlement.slug} {preposition} {principal.email}"
        )
        return ManualTaskSpec(
            group=self.group,
            title=title,
            instructions=self.instructions,
            remind_after_hours=self.remind_after_hours,
        )

    def grant(
        self, principal: PrincipalRef, entitlement: EntitlementRef, *, idempotency_key: str
    ) -> Result:
        task = self.task_for("grant", principal, entitlement)
        return Result(
            changed=False, status=PENDING_MANUAL, detail=f"{task.title} (by {task.group})"
        )

    def revoke(
        self, principal: PrincipalRef, entitlement: EntitlementRef, *, idempotency_key: str
    ) -> Result:
        task = self.task_for("revoke", principal, entitlement)
        return Result(
            changed=False, status=PENDING_MANUAL, detail=f"{task.title} (by {task.group})"
        )
