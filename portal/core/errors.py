"""Domain errors raised by services; views and the API map them to responses."""


class DomainError(Exception):
    status = 400
    code = "domain-error"

    def __init__(self, message: str = "", *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


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
