"""SCIM error responses (RFC 7644 section 3.12): schemas, status as a string, scimType, detail."""

from __future__ import annotations


class ScimError(Exception):
    def __init__(self, status: int, detail: str, scim_type: str | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type

    def body(self) -> dict:
        from .constants import ERROR

        doc: dict = {"schemas": [ERROR], "status": str(self.status), "detail": self.detail}
        if self.scim_type:
            doc["scimType"] = self.scim_type
        return doc


def invalid_value(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidValue")


def invalid_filter(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidFilter")


def invalid_path(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidPath")


def invalid_syntax(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidSyntax")


def mutability(detail: str) -> ScimError:
    return ScimError(400, detail, "mutability")


def no_target(detail: str) -> ScimError:
    return ScimError(400, detail, "noTarget")


def not_found(detail: str = "no such resource") -> ScimError:
    return ScimError(404, detail)


def uniqueness(detail: str) -> ScimError:
    return ScimError(409, detail, "uniqueness")
