"""Catalog, approval policies, requests (intent), approvals and grants (fact).

Three records for three things: the AccessRequest is the intent, the Grant is the
fact, and the SyncJob is the effect downstream.

* :mod:`access.models.catalog` — services, entitlements, approval policies, toxic pairs,
  delegations.
* :mod:`access.models.requests` — requests, approvals, grants.
* :mod:`access.models.sync` — sync jobs, manual tasks, reconciliation, reminders, follow-ups.

Everything is re-exported here: ``from access.models import Grant`` and the migrations keep
working.
"""

from .bundles import AccessBundle, AssignmentRule, BundleAssignment, BundleRequest
from .catalog import (
    RISK_ORDER,
    ApprovalPolicy,
    CatalogChangeProposal,
    Delegation,
    Entitlement,
    PolicyStage,
    Risk,
    Service,
    ToxicPair,
)
from .requests import AccessRequest, Approval, ApprovalAssignment, Grant
from .sync import (
    OPEN_JOB_STATUSES,
    DriftItem,
    FollowUpReview,
    GrantReminder,
    ManualTask,
    ReconciliationRun,
    SyncJob,
)

__all__ = [
    "AccessBundle",
    "AssignmentRule",
    "BundleAssignment",
    "BundleRequest",
    "OPEN_JOB_STATUSES",
    "RISK_ORDER",
    "AccessRequest",
    "Approval",
    "ApprovalAssignment",
    "ApprovalPolicy",
    "CatalogChangeProposal",
    "Delegation",
    "DriftItem",
    "Entitlement",
    "FollowUpReview",
    "Grant",
    "GrantReminder",
    "ManualTask",
    "PolicyStage",
    "ReconciliationRun",
    "Risk",
    "Service",
    "SyncJob",
    "ToxicPair",
]
