"""The SCIM 2.0 endpoints under ``/scim/v2/``: thin views. Each request is authenticated by a
SCIM client's bearer token only (no session, so no CSRF), rate limited per client, and
answered in ``application/scim+json``; errors are SCIM error bodies."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from portal.core.errors import Conflict, DomainError, NotFound, NotPermitted, ValidationError

from . import constants, discovery, mapping, selectors, services
from .errors import ScimError, invalid_syntax, invalid_value, not_found
from .filters import GROUP_ATTRS, USER_ATTRS, filter_q, sort_field
from .models import ScimClient
from .patch import apply_patch
from .resources import group_doc, project, user_doc

logger = logging.getLogger(__name__)
MAX_TOKEN_LENGTH = 200


def scim_response(doc: Any, status: int = 200, *, etag: str | None = None, location=None):
    response = HttpResponse(
        json.dumps(doc) if doc is not None else b"",
        status=status,
        content_type=constants.CONTENT_TYPE,
    )
    if etag:
        response["ETag"] = etag
    if location:
        response["Location"] = location
    return response


def error_response(error: ScimError) -> HttpResponse:
    response = scim_response(error.body(), error.status)
    if error.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="tollgate-scim"'
    return response


def authenticate(request: HttpRequest) -> ScimClient:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    parts = header.split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        raise ScimError(401, "send Authorization: Bearer <SCIM client token>")
    plaintext = parts[1]
    if len(plaintext) > MAX_TOKEN_LENGTH:
        raise ScimError(401, "invalid token")
    digest = services.hash_secret(plaintext)
    client = selectors.client_for_hash(digest)
    if client is None or not hmac.compare_digest(client.key_hash, digest):
        raise ScimError(401, "invalid token: only SCIM client tokens are accepted here")
    if client.revoked_at is not None:
        raise ScimError(401, "this SCIM client has been revoked")
    return client


def _domain_error(exc: DomainError) -> ScimError:
    if isinstance(exc, NotFound):
        return not_found(exc.message)
    if isinstance(exc, Conflict):
        return ScimError(409, exc.message, "uniqueness")
    if isinstance(exc, NotPermitted):
        return ScimError(403, exc.message)
    if isinstance(exc, ValidationError):
        return invalid_value(exc.message)
    return ScimError(400, exc.message)


@method_decorator(csrf_exempt, name="dispatch")
class ScimView(View):
    http_method_names = ["get", "post", "put", "patch", "delete"]
    client: ScimClient

    def dispatch(self, request, *args, **kwargs):
        try:
            self.client = authenticate(request)
            wait = services.scim_rate_check(client=self.client)
            if wait is not None:
                response = error_response(ScimError(429, "too many requests: slow down"))
                response["Retry-After"] = str(wait)
                return response
            services.scim_client_touch(client=self.client)
            if request.method not in ("GET", "DELETE") and request.method in (
                m.upper() for m in self.http_method_names
            ):
                kind = request.content_type or ""
                if kind not in (constants.CONTENT_TYPE, "application/json"):
                    raise ScimError(415, "send application/scim+json")
            return super().dispatch(request, *args, **kwargs)
        except ScimError as exc:
            return error_response(exc)
        except DomainError as exc:
            return error_response(_domain_error(exc))
        except Exception:
            logger.exception("SCIM request failed")
            return error_response(ScimError(500, "internal error; see the server log"))

    def http_method_not_allowed(self, request, *args, **kwargs):
        return error_response(ScimError(405, f"{request.method} is not supported here"))

    def base(self) -> str:
        return self.request.build_absolute_uri("/scim/v2").rstrip("/")

    def body(self) -> Any:
        try:
            return json.loads(self.request.body or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            raise invalid_syntax(f"the body is not JSON: {exc}") from None

    def check_if_match(self, doc: dict) -> None:
        wanted = self.request.headers.get("If-Match")
        if not wanted:
            return
        tags = {t.strip() for t in wanted.split(",")}
        if "*" in tags:
            return
        have = doc["meta"]["version"]
        if have not in tags and have.removeprefix("W/") not in tags:
            raise ScimError(412, "the resource changed: If-Match does not match its version")

    def projected(self, doc: dict, core: str) -> dict:
        return project(
            doc,
            attributes=self.request.GET.get("attributes"),
            excluded=self.request.GET.get("excludedAttributes"),
            core_uri=core,
        )

    def page(self) -> tuple[int, int]:
        try:
            start = int(self.request.GET.get("startIndex", "1"))
            count = int(self.request.GET.get("count", str(constants.DEFAULT_COUNT)))
        except ValueError:
            raise invalid_value("startIndex and count are integers") from None
        # RFC 7644 3.4.2.4: below 1 means 1; a negative count means 0.
        return max(start, 1), min(max(count, 0), constants.MAX_RESULTS)

    def listing(self, qs, attr_map: dict, core: str, render) -> HttpResponse:
        text = self.request.GET.get("filter")
        if text:
            qs = qs.filter(filter_q(text, attr_map))
            if "members" in text.lower():
                qs = qs.distinct()
        order = "pk"
        sort_by = self.request.GET.get("sortBy")
        if sort_by:
            order = sort_field(sort_by, attr_map)
            direction = self.request.GET.get("sortOrder", "ascending").lower()
            if direction not in ("ascending", "descending"):
                raise invalid_value("sortOrder is ascending or descending")
            if direction == "descending":
                order = "-" + order
        start, count = self.page()
        total = qs.count()
        rows = list(qs.order_by(order, "pk")[start - 1 : start - 1 + count]) if count else []
        docs = [self.projected(doc, core) for doc in render(rows)]
        return scim_response(list_response(docs, total=total, start=start))


def list_response(docs: list, *, total: int, start: int = 1) -> dict:
    """A SCIM ListResponse (RFC 7644 section 3.4.2) around one page of resources."""
    return {
        "schemas": [constants.LIST],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": len(docs),
        "Resources": docs,
    }


# --- Discovery --------------------------------------------------------------------------


class ServiceProviderConfigView(ScimView):
    http_method_names = ["get"]

    def get(self, request):
        return scim_response(discovery.service_provider_config())


class _RegistryView(ScimView):
    """A discovery endpoint over a fixed registry: one entry by its key, or all of them."""

    http_method_names = ["get"]
    registry: Mapping[Any, Any]
    kind: str

    def get(self, request, key: str | None = None):
        if key is not None:
            if key not in self.registry:
                raise not_found(f"no {self.kind} {key}")
            return scim_response(self.registry[key])
        items = list(self.registry.values())
        return scim_response(list_response(items, total=len(items)))


class ResourceTypesView(_RegistryView):
    registry = discovery.RESOURCE_TYPES
    kind = "resource type"


class SchemasView(_RegistryView):
    registry = discovery.SCHEMAS
    kind = "schema"


# --- Users ------------------------------------------------------------------------------


def _visible_users():
    # A person deleted through SCIM (and still a leaver) is gone from SCIM.
    return selectors.users().exclude(Q(scim__deleted_at__isnull=False) & Q(is_active=False))


class UsersView(ScimView):
    def render(self, people) -> list[dict]:
        selectors.attach_user_rows(people)
        base = self.base()
        return [user_doc(p, base=base) for p in people]

    def person(self, pk: str):
        try:
            user = _visible_users().filter(pk=int(pk)).first()
        except ValueError:
            user = None
        if user is None:
            raise not_found(f"no User {pk}")
        return user, self.render([user])[0]

    def respond(self, written, status=200) -> HttpResponse:
        if written.created is not None:  # created by this request: as written, not re-read
            doc = user_doc(selectors.user_as_created(*written.created), base=self.base())
        else:
            doc = self.render([selectors.users().get(pk=written.user_id)])[0]
        return scim_response(
            self.projected(doc, constants.USER),
            status,
            etag=doc["meta"]["version"],
            location=doc["meta"]["location"],
        )

    def held(self, held) -> HttpResponse:
        return scim_response(
            {
                "schemas": [constants.ERROR],
                "status": "202",
                "detail": f"held for an administrator's confirmation (held change {held.pk}): "
                "more than the allowed share of people would leave within an hour",
            },
            202,
        )

    def operation(self, pk: str | None = None) -> str:
        return f"{self.request.method} /Users" + (f"/{pk}" if pk else "")

    def get(self, request, pk: str | None = None):
        if pk is None:
            return self.listing(_visible_users(), USER_ATTRS, constants.USER, self.render)
        user, doc = self.person(pk)
        return scim_response(
            self.projected(doc, constants.USER),
            etag=doc["meta"]["version"],
            location=doc["meta"]["location"],
        )

    def post(self, request, pk: str | None = None):
        if pk is not None:
            raise ScimError(405, "POST goes to /Users")
        data = mapping.user_input(
            self.body(), current=None, default_team=settings.TOLLGATE_SCIM_DEFAULT_TEAM
        )
        written = services.scim_user_create(
            client=self.client, data=data, operation=self.operation()
        )
        return self.held(written.held) if written.held else self.respond(written, 201)

    def put(self, request, pk: str | None = None):
        if pk is None:
            raise ScimError(405, "PUT goes to /Users/{id}")
        user, doc = self.person(pk)
        self.check_if_match(doc)
        data = mapping.user_input(
            self.body(), current=user, default_team=settings.TOLLGATE_SCIM_DEFAULT_TEAM
        )
        written = services.scim_user_replace(
            client=self.client, data=data, operation=self.operation(pk)
        )
        return self.held(written.held) if written.held else self.respond(written)

    def patch(self, request, pk: str | None = None):
        if pk is None:
            raise ScimError(405, "PATCH goes to /Users/{id}")
        user, doc = self.person(pk)
        self.check_if_match(doc)
        patched = apply_patch(
            doc, self.body(), core_uri=constants.USER, read_only=frozenset({"groups"})
        )
        data = mapping.user_input(
            patched, current=user, default_team=settings.TOLLGATE_SCIM_DEFAULT_TEAM
        )
        written = services.scim_user_replace(
            client=self.client, data=data, operation=self.operation(pk)
        )
        return self.held(written.held) if written.held else self.respond(written)

    def delete(self, request, pk: str | None = None):
        if pk is None:
            raise ScimError(405, "DELETE goes to /Users/{id}")
        user, doc = self.person(pk)
        self.check_if_match(doc)
        data = mapping.user_input(
            doc, current=user, default_team=settings.TOLLGATE_SCIM_DEFAULT_TEAM
        )
        written = services.scim_user_delete(
            client=self.client, data=data, operation=self.operation(pk)
        )
        return self.held(written.held) if written.held else scim_response(None, 204)


# --- Groups -----------------------------------------------------------------------------


def _visible_groups():
    return selectors.groups().filter(scim__deleted_at__isnull=True)


class GroupsView(ScimView):
    def render(self, teams) -> list[dict]:
        members = selectors.attach_group_rows(teams)
        base = self.base()
        return [group_doc(t, base=base, members=members.get(t.pk, [])) for t in teams]

    def team(self, pk: str):
        try:
            team = _visible_groups().filter(pk=int(pk)).first()
        except ValueError:
            team = None
        if team is None:
            raise not_found(f"no Group {pk}")
        return team, self.render([team])[0]

    def respond(self, team, status=200) -> HttpResponse:
        fresh = selectors.groups().get(pk=team.pk)
        doc = self.render([fresh])[0]
        return scim_response(
            self.projected(doc, constants.GROUP),
            status,
            etag=doc["meta"]["version"],
            location=doc["meta"]["location"],
        )

    def operation(self, pk: str | None = None) -> str:
        return f"{self.request.method} /Groups" + (f"/{pk}" if pk else "")

    def get(self, request, pk: str | None = None):
        if pk is None:
            return self.listing(_visible_groups(), GROUP_ATTRS, constants.GROUP, self.render)
        team, doc = self.team(pk)
        return scim_response(
            self.projected(doc, constants.GROUP),
            etag=doc["meta"]["version"],
            location=doc["meta"]["location"],
        )

    def post(self, request, pk: str | None = None):
        if pk is not None:
            raise ScimError(405, "POST goes to /Groups")
        data = mapping.group_input(self.body())
        team = services.scim_group_create(client=self.client, data=data, operation=self.operation())
        return self.respond(team, 201)

    def put(self, request, pk: str | None = None):
        if pk is None:
            raise ScimError(405, "PUT goes to /Groups/{id}")
        team, doc = self.team(pk)
        self.check_if_match(doc)
        data = mapping.group_input(self.body())
        team = services.scim_group_replace(
            client=self.client, team=team, data=data, operation=self.operation(pk)
        )
        return self.respond(team)

    def patch(self, request, pk: str | None = None):
        if pk is None:
            raise ScimError(405, "PATCH goes to /Groups/{id}")
        team, doc = self.team(pk)
        self.check_if_match(doc)
        patched = apply_patch(doc, self.body(), core_uri=constants.GROUP)
        data = mapping.group_input(patched)
        team = services.scim_group_replace(
            client=self.client, team=team, data=data, operation=self.operation(pk)
        )
        return self.respond(team)

    def delete(self, request, pk: str | None = None):
        if pk is None:
            raise ScimError(405, "DELETE goes to /Groups/{id}")
        team, doc = self.team(pk)
        self.check_if_match(doc)
        services.scim_group_delete(client=self.client, team=team, operation=self.operation(pk))
        return scim_response(None, 204)
