"""Typed outcomes of access services: why something is refused, as a stable code.

A refusal is a value: a ``RefusalCode`` plus a message for people. Services raise the
domain error whose class matches the code's HTTP status (``refusal``), carrying the code
(``reason_code``); the API answers with the status of the code (``REFUSAL_STATUS``) and puts
the code in the problem+json body as ``reason``. Nothing reads the message to decide.

The preview of a request lists its refusals as ``Refusal`` values: strings (the message, so
pages and checks that add their own plain strings keep working) that also carry their code.
"""

from __future__ import annotations

from enum import StrEnum

from portal.core.errors import (
    Conflict,
    DomainError,
    NotFound,
    NotPermitted,
    ValidationError,
    refusal_statuses_register,
)


class RefusalCode(StrEnum):
    # 409: the state of things says no (it already exists or was already decided)
    DUPLICATE_OPEN_REQUEST = "duplicate-open-request"
    ALREADY_HELD = "already-held"
    ALREADY_DECIDED = "already-decided"
    ALREADY_APPROVED = "already-approved"
    NOT_REVOKED = "not-revoked"
    PRINCIPAL_INACTIVE = "principal-inactive"
    # Re-checked when a request is approved: things changed since it was submitted.
    NO_LONGER_REQUESTABLE = "no-longer-requestable"
    SEPARATION_OF_DUTIES_AT_DECISION = "separation-of-duties-at-decision"
    PROPOSAL_PENDING = "proposal-pending"  # a change of that control already waits
    PROPOSAL_STALE = "proposal-stale"  # the control changed since it was proposed
    # 403: the actor may not do this
    NOT_PERMITTED = "not-permitted"
    NOT_AN_APPROVER = "not-an-approver"
    OWN_REQUEST = "own-request"
    APPROVED_ANOTHER_STAGE = "approved-another-stage"  # one person approves one stage
    NEEDS_CONTROL_REVIEW = "needs-control-review"  # an owner weakening their own controls
    OWN_PROPOSAL = "own-proposal"  # nobody applies their own proposal
    # 400: the request as posed is refused
    NOT_ELIGIBLE = "not-eligible"  # not requestable, principal inactive, duration out of range
    MISSING_PREREQUISITE = "missing-prerequisite"
    SEPARATION_OF_DUTIES = "separation-of-duties"
    UNAPPROVABLE = "unapprovable"  # a stage has fewer eligible approvers than it needs
    POLICY_CHECK = "policy-check"  # refused by a registered request check (standards)
    # 404
    NOT_FOUND = "not-found"


REFUSAL_STATUS: dict[RefusalCode, int] = {
    RefusalCode.DUPLICATE_OPEN_REQUEST: 409,
    RefusalCode.ALREADY_HELD: 409,
    RefusalCode.ALREADY_DECIDED: 409,
    RefusalCode.ALREADY_APPROVED: 409,
    RefusalCode.NOT_REVOKED: 409,
    RefusalCode.PRINCIPAL_INACTIVE: 409,
    RefusalCode.NO_LONGER_REQUESTABLE: 409,
    RefusalCode.SEPARATION_OF_DUTIES_AT_DECISION: 409,
    RefusalCode.PROPOSAL_PENDING: 409,
    RefusalCode.PROPOSAL_STALE: 409,
    RefusalCode.NOT_PERMITTED: 403,
    RefusalCode.NOT_AN_APPROVER: 403,
    RefusalCode.OWN_REQUEST: 403,
    RefusalCode.APPROVED_ANOTHER_STAGE: 403,
    RefusalCode.NEEDS_CONTROL_REVIEW: 403,
    RefusalCode.OWN_PROPOSAL: 403,
    RefusalCode.NOT_ELIGIBLE: 400,
    RefusalCode.MISSING_PREREQUISITE: 400,
    RefusalCode.SEPARATION_OF_DUTIES: 400,
    RefusalCode.UNAPPROVABLE: 400,
    RefusalCode.POLICY_CHECK: 400,
    RefusalCode.NOT_FOUND: 404,
}
refusal_statuses_register({str(code): status for code, status in REFUSAL_STATUS.items()})

_ERROR_FOR_STATUS: dict[int, type[DomainError]] = {
    409: Conflict,
    403: NotPermitted,
    400: ValidationError,
    404: NotFound,
}


def refusal(code: RefusalCode, message: str, *, field: str | None = None) -> DomainError:
    """The domain error for a refusal: its class follows the code's status."""
    return _ERROR_FOR_STATUS[REFUSAL_STATUS[code]](message, field=field, reason_code=code)


class Refusal(str):
    """One refusal of a preview: the message (a ``str``) with its ``code``."""

    code: RefusalCode

    def __new__(cls, code: RefusalCode, message: str) -> Refusal:
        value = super().__new__(cls, message)
        value.code = code
        return value


def refusal_code(refusal: str) -> RefusalCode:
    """The code of a preview refusal; a plain string (added by a check) is a policy check."""
    return getattr(refusal, "code", RefusalCode.POLICY_CHECK)
