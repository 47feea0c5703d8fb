"""Domain errors raised by services; views and the API map them to responses.

A refusal may carry a stable ``reason_code`` (an app's ``RefusalCode``). Apps register the
HTTP status of each of their codes (``refusal_statuses_register``); the API answers with the
status of the code, never by reading the message, and puts the code in the body (``reason``).
"""

from __future__ import annotations

from collections.abc import Mapping

# reason code -> HTTP status, filled by the apps that define codes (at import of their
# outcomes module).
REFUSAL_STATUS: dict[str, int] = {}


def refusal_statuses_register(statuses: Mapping[str, int]) -> None:
    """Name the HTTP status of each reason code; a code registered twice must agree."""
    for code, status in statuses.items():
        if REFUSAL_STATUS.setdefault(str(code), status) != status:
            raise ValueError(f"reason code {code!r} is already registered with another status")


class DomainError(Exception):
    status = 400
    code = "domain-error"

    def __init__(
        self, message: str = "", *, field: str | None = None, reason_code: str | None = None
    ):
        super().__init__(message)
        self.message = message
        self.field = field
        self.reason_code = str(reason_code) if reason_code else None

    @property
    def http_status(self) -> int:
        """The status of the reason code when it has one, else the class's."""
        if self.reason_code is not None:
            return REFUSAL_STATUS.get(self.reason_code, self.status)
        return self.status


class NotPermitted(DomainError):
    status = 403
    code = "not-permitted"


class NotFound(DomainError):
    status = 404
    code = "not-found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class InvalidTransition(Conflict):
    code = "invalid-transition"


class ValidationError(DomainError):
    status = 400
    code = "validation-error"
