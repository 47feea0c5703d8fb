"""Discovery (RFC 7644 section 4): what this service provider supports, exactly."""

from __future__ import annotations

from . import constants


def _attr(
    name,
    type_="string",
    *,
    multi=False,
    required=False,
    mutability="readWrite",
    returned="default",
    case_exact=False,
    uniqueness="none",
    sub=None,
    description="",
):
    doc = {
        "name": name,
        "type": type_,
        "multiValued": multi,
        "description": description,
        "required": required,
        "caseExact": case_exact,
        "mutability": mutability,
        "returned": returned,
        "uniqueness": uniqueness,
    }
    if sub is not None:
        doc["subAttributes"] = sub
    if type_ == "reference":
        doc["referenceTypes"] = ["User", "Group"]
    return doc


def _ref_sub(ref_type: str) -> list[dict]:
    return [
        _attr("value", description=f"the {ref_type}'s id"),
        _attr("$ref", "reference", mutability="readOnly"),
        _attr("display", mutability="readOnly"),
    ]


USER_SCHEMA = {
    "id": constants.USER,
    "name": "User",
    "description": "A person (accounts.User). userName is the work e-mail, the directory's key.",
    "attributes": [
        _attr(
            "userName",
            required=True,
            uniqueness="server",
            mutability="immutable",
            description="work e-mail; cannot change once created",
        ),
        _attr(
            "name",
            "complex",
            sub=[
                _attr("formatted"),
                _attr("givenName"),
                _attr("familyName"),
            ],
            description="formatted, or givenName + familyName, when displayName is absent",
        ),
        _attr("displayName", description="the person's name in Tollgate"),
        _attr(
            "emails",
            "complex",
            multi=True,
            mutability="readOnly",
            sub=[
                _attr("value"),
                _attr("type"),
                _attr("primary", "boolean"),
            ],
            description="the work e-mail (= userName)",
        ),
        _attr("active", "boolean", description="false makes the person a leaver"),
        _attr("userType", description="employee or contractor"),
        _attr(
            "groups",
            "complex",
            multi=True,
            mutability="readOnly",
            sub=_ref_sub("Group"),
            description="team memberships; change them through Groups",
        ),
    ],
    "meta": {"resourceType": "Schema", "location": f"/scim/v2/Schemas/{constants.USER}"},
}

ENTERPRISE_SCHEMA = {
    "id": constants.ENTERPRISE,
    "name": "EnterpriseUser",
    "description": "Enterprise User extension",
    "attributes": [
        _attr("department", description="the home team, by name or slug (created if new)"),
        _attr("manager", "complex", sub=_ref_sub("User"), description="the manager's User id"),
        _attr("employeeNumber"),
        _attr("costCenter"),
    ],
    "meta": {"resourceType": "Schema", "location": f"/scim/v2/Schemas/{constants.ENTERPRISE}"},
}

GROUP_SCHEMA = {
    "id": constants.GROUP,
    "name": "Group",
    "description": "A team (accounts.Team); members are its memberships.",
    "attributes": [
        _attr("displayName", required=True, uniqueness="server", description="the team's name"),
        _attr(
            "members",
            "complex",
            multi=True,
            sub=_ref_sub("User"),
            description="home-team members and leads are kept when removed",
        ),
    ],
    "meta": {"resourceType": "Schema", "location": f"/scim/v2/Schemas/{constants.GROUP}"},
}

TOLLGATE_GROUP_SCHEMA = {
    "id": constants.TOLLGATE_GROUP,
    "name": "TollgateGroup",
    "description": "Tollgate's team attributes",
    "attributes": [
        _attr("parent", "complex", sub=_ref_sub("Group"), description="the parent team's id"),
        _attr("slug", mutability="readOnly", description="the team's slug in Tollgate"),
    ],
    "meta": {
        "resourceType": "Schema",
        "location": f"/scim/v2/Schemas/{constants.TOLLGATE_GROUP}",
    },
}

SCHEMAS = {
    s["id"]: s for s in (USER_SCHEMA, ENTERPRISE_SCHEMA, GROUP_SCHEMA, TOLLGATE_GROUP_SCHEMA)
}

RESOURCE_TYPES = {
    "User": {
        "schemas": [constants.RESOURCE_TYPE],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": "People",
        "schema": constants.USER,
        "schemaExtensions": [{"schema": constants.ENTERPRISE, "required": False}],
        "meta": {"resourceType": "ResourceType", "location": "/scim/v2/ResourceTypes/User"},
    },
    "Group": {
        "schemas": [constants.RESOURCE_TYPE],
        "id": "Group",
        "name": "Group",
        "endpoint": "/Groups",
        "description": "Teams",
        "schema": constants.GROUP,
        "schemaExtensions": [{"schema": constants.TOLLGATE_GROUP, "required": False}],
        "meta": {"resourceType": "ResourceType", "location": "/scim/v2/ResourceTypes/Group"},
    },
}


def service_provider_config() -> dict:
    return {
        "schemas": [constants.SPC],
        "documentationUri": "https://tollgate.test/docs/SCIM.md",
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": constants.MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": True},
        "etag": {"supported": True},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "A SCIM client token (manage.py create_scim_token or the SCIM page)",
                "primary": True,
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": "/scim/v2/ServiceProviderConfig",
        },
    }
