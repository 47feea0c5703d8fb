"""SCIM 2.0 client connector: entitlements are downstream groups, holders are their members.

Tollgate acts as a SCIM *client* towards an application that serves SCIM 2.0 (RFC 7643/7644):
requests and responses are built and checked by ``scim2-client`` over ``scim2-models``, sent
with ``httpx2``. Service ``connector_config`` (non-secret; the bearer token comes from the
environment)::

    {
      "base_url": "https://app.example/scim/v2",   # required; http(s), no credentials
      "token_env": "TOLLGATE_SCIM_APP_TOKEN",      # required: env var holding the bearer token
      "groups": {"app-admins": "Admins"},          # entitlement slug -> group displayName
      "user_name_from": "email",                   # email (default) | login
      "deactivate_when_unused": false,             # revoke: deactivate a user left in no group
      "timeout": 10,                               # seconds per request
      "health_timeout": 3                          # seconds for health()
    }

An entitlement's group is ``EntitlementRef.config["group"]`` (its ``displayName``), else
``groups[slug]``.

* ``grant`` makes sure the user exists downstream (matched by ``userName`` or ``externalId``,
  created on first grant, reactivated when inactive; a creation that loses a race to another
  one answers 409 and the existing user is used, so a user is never duplicated) and is a member
  of the group (``PATCH`` ``add`` on ``members``). Already a member: ``changed=False``.
* ``revoke`` removes the membership (``PATCH`` ``remove`` ``members[value eq "<id>"]``); no
  such user or no membership is a no-op. With ``deactivate_when_unused`` a user left in no group
  downstream is set ``active: false`` (never deleted).
* ``list_holders`` reads the group's members, ordered by member id with a keyset cursor, and
  resolves each page's ids to ``userName`` with one filtered query.
* ``health`` reads one user id (an authenticated, cheap read) with a short timeout.

Errors: no answer, timeouts, 408, 429 and 5xx are :class:`TransientError` (``retry_after``
from the ``Retry-After`` header); other 4xx are :class:`PermanentError` quoting the SCIM
``detail``; a missing group is permanent. The token never appears in a message.
"""

from __future__ import annotations

import functools
import json
import ssl
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import parsedate_to_datetime
from typing import Any, cast

import httpx2
from pydantic import ValidationError as PydanticValidationError
from scim2_client import SCIMClientException
from scim2_client.client import describe_resource_models
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_client.errors import RequestNetworkException
from scim2_models import (
    Email,
    Group,
    PatchOp,
    SCIMException,
    ScimProvider,
    SearchRequest,
    User,
)

from connectors.base import (
    ConfigError,
    Connector,
    ConnectorDescription,
    EntitlementRef,
    EntitlementSpec,
    Health,
    Holder,
    Page,
    PermanentError,
    PrincipalRef,
    ResourceType,
    Result,
    TransientError,
    decode_pair_cursor,
    elapsed_ms,
    encode_pair_cursor,
)

USER_NAME_MODES = ("email", "login")
TRANSIENT_STATUSES = {408, 425, 429}
MAX_RETRY_AFTER_S = 3600.0
USER_AGENT = "Tollgate-Connector/1 (SCIM)"


@functools.cache
def _provider() -> ScimProvider:
    """The resources this client speaks (core User and Group), without a discovery round trip."""
    models, resource_types = describe_resource_models((User, Group))
    return ScimProvider(models=models, resource_types=resource_types)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process (building one costs ~50 ms per client)."""
    return ssl.create_default_context()


def _check_url(value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError("scim connector: base_url must be a URL")
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError("scim connector: base_url must be an http(s) URL with a host")
    if parts.username or parts.password:
        raise ConfigError("scim connector: base_url may not carry credentials")
    if parts.query or parts.fragment:
        raise ConfigError("scim connector: base_url may not have a query or fragment")
    return value.rstrip("/")


def _seconds(value: Any, key: str, default: float) -> float:
    value = default if value is None else value
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"scim connector: {key} must be a positive number of seconds")
    return float(value)


def search_request(flt: str | None, attributes: list[str], count: int) -> SearchRequest:
    """A SCIM search: ``filter``, the ``attributes`` to return, at most ``count`` results."""
    payload: dict[str, Any] = {"attributes": attributes, "count": count}
    if flt:
        payload["filter"] = flt
    return SearchRequest.model_validate(payload)


def patch(model: type, *operations: dict[str, Any]) -> PatchOp:
    """A SCIM PATCH of ``model`` (RFC 7644 §3.5.2) from plain operation objects."""
    return PatchOp[model].model_validate({"Operations": list(operations)})  # type: ignore[valid-type]


def quote(value: str) -> str:
    """A SCIM filter string literal (JSON string syntax, RFC 7644 §3.4.2.2)."""
    return json.dumps(value)


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """The ``Retry-After`` header as seconds (delta-seconds or an HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


class ScimConnector(Connector):
    name = "scim"
    env_keys = ("token_env",)
    required_keys = ("base_url", "token_env")
    supports_list_holders = True
    supports_last_used = False
    lists_per_entitlement = True  # a group may be named by the entitlement's own config

    def __init__(self, config=None):
        super().__init__(config)
        cfg = self.config
        self.base_url = _check_url(cfg["base_url"])
        self.host = urllib.parse.urlsplit(self.base_url).netloc
        groups = cfg.get("groups", {})
        if not isinstance(groups, dict) or not all(
            isinstance(name, str) and name.strip() for name in groups.values()
        ):
            raise ConfigError(
                "scim connector: groups must map entitlement slugs to group display names"
            )
        self.groups: dict[str, str] = {str(slug): name for slug, name in groups.items()}
        self.user_name_from = cfg.get("user_name_from", "email")
        if self.user_name_from not in USER_NAME_MODES:
            raise ConfigError(
                f"scim connector: user_name_from must be one of {', '.join(USER_NAME_MODES)}"
            )
        self.deactivate_when_unused = cfg.get("deactivate_when_unused", False)
        if not isinstance(self.deactivate_when_unused, bool):
            raise ConfigError("scim connector: deactivate_when_unused must be true or false")
        self.timeout = _seconds(cfg.get("timeout"), "timeout", 10.0)
        self.health_timeout = _seconds(cfg.get("health_timeout"), "health_timeout", 3.0)

    # Declaration -----------------------------------------------------------------------
    def describe(self) -> ConnectorDescription:
        return ConnectorDescription(
            name=self.name,
            resource_types=(ResourceType("group", "SCIM group; holders are its members"),),
            entitlements=tuple(
                EntitlementSpec(
                    slug=slug, resource_type="group", name=group, config={"group": group}
                )
                for slug, group in sorted(self.groups.items())
            ),
            supports_list_holders=True,
            supports_last_used=False,
            notes=f"SCIM 2.0 at {self.host}; users matched by userName or externalId",
        )

    def group_for(self, entitlement: EntitlementRef) -> str:
        group = (entitlement.config or {}).get("group") or self.groups.get(entitlement.slug)
        if not isinstance(group, str) or not group.strip():
            raise ConfigError(
                f"entitlement {entitlement.service_slug}/{entitlement.slug} names no SCIM group: "
                "set its config {'group': ...} or the service's connector_config groups map"
            )
        return group

    def login_for(self, principal: PrincipalRef) -> str:
        """The downstream ``userName``: the e-mail address (lower case) or the login.

        An explicit ``principal.login`` (a holder found downstream, or ``user_name_from=login``)
        is used as it is.
        """
        if principal.login:
            return principal.login
        if self.user_name_from == "login":
            raise ConfigError(f"principal {principal.email} has no login (user_name_from=login)")
        email = principal.email.strip().lower()
        if not email:
            raise ConfigError("principal has neither an e-mail address nor a login")
        return email

    # Plumbing --------------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        try:
            token = self.secret_from_env("token_env")
        except ConfigError:
            return text
        return text.replace(token, "***") if token else text

    @contextmanager
    def _session(self, action: str, *, timeout: float | None = None) -> Iterator[SyncSCIMClient]:
        """A SCIM client for one operation; every failure leaves as a connector error."""
        token = self.secret_from_env("token_env")
        client = httpx2.Client(
            base_url=self.base_url,
            headers={
                "Authorization": f"Bearer {token}",
                "User-Agent": USER_AGENT,
                "Accept": "application/scim+json, application/json",
            },
            timeout=timeout or self.timeout,
            verify=_tls_context(),
            trust_env=False,
            follow_redirects=False,
        )
        try:
            with client:
                yield SyncSCIMClient(client, provider=_provider())
        except (TransientError, PermanentError):
            raise
        except Exception as exc:
            raise self._translate(exc, action) from None

    def _translate(self, exc: Exception, action: str) -> Exception:
        """Map a scim2-client / httpx2 failure to TransientError or PermanentError."""
        where = f"SCIM {action} at {self.host}"
        if isinstance(exc, RequestNetworkException):
            cause = exc.__cause__
            if isinstance(cause, httpx2.TimeoutException):
                return TransientError(f"{where} timed out")
            reason = self._redact(str(cause or exc))[:200] or type(cause).__name__
            return TransientError(f"{where} failed: {reason}")
        if isinstance(exc, SCIMException | SCIMClientException):
            response = getattr(exc, "source", None)
            status = getattr(response, "status_code", None)
            if status is None:
                raw_status = str(getattr(exc, "status", "") or "")
                status = int(raw_status) if raw_status.isdigit() else None
            detail = self._redact(str(getattr(exc, "detail", "") or exc))[:300]
            if status is not None and (status in TRANSIENT_STATUSES or status >= 500):
                headers = getattr(response, "headers", None)
                retry = retry_after_seconds(headers.get("retry-after") if headers else None)
                note = f"; retry after {retry:g}s" if retry is not None else ""
                return TransientError(
                    f"{where} answered HTTP {status}: {detail}{note}", retry_after=retry
                )
            code = f"HTTP {status}" if status is not None else "an invalid answer"
            return PermanentError(f"{where} answered {code}: {detail}")
        if isinstance(exc, PydanticValidationError):
            return PermanentError(f"{where}: invalid SCIM payload: {str(exc).splitlines()[0]}")
        if isinstance(exc, httpx2.HTTPError):
            return TransientError(f"{where} failed: {self._redact(str(exc))[:200]}")
        return PermanentError(f"{where} failed: {type(exc).__name__}")

    # Lookups ---------------------------------------------------------------------------
    @staticmethod
    def _search(
        scim: SyncSCIMClient, model: type, flt: str | None, attributes: list[str], count: int = 2
    ) -> list[Any]:
        response: Any = scim.query(model, query_parameters=search_request(flt, attributes, count))
        return list(response.resources or [])

    def _group_id(self, scim: SyncSCIMClient, group: str) -> str:
        found = self._search(scim, Group, f"displayName eq {quote(group)}", ["id", "displayName"])
        if not found:
            raise PermanentError(f"SCIM group {group!r} does not exist at {self.host}")
        if len(found) > 1:
            raise PermanentError(f"SCIM group {group!r} is ambiguous at {self.host}")
        return str(found[0].id)

    def _find_user(self, scim: SyncSCIMClient, principal: PrincipalRef) -> User | None:
        """The downstream user whose userName or externalId is this person's; never guess
        between two different users."""
        user_name = self.login_for(principal)
        email = principal.email.strip().lower()
        flt = f"userName eq {quote(user_name)}"
        if email and not principal.login:
            flt += f" or externalId eq {quote(email)}"
        found = self._search(scim, User, flt, ["id", "userName", "externalId", "active"], count=3)
        if not found:
            return None
        by_name = [u for u in found if (u.user_name or "").lower() == user_name.lower()]
        if len(by_name) == 1:
            return by_name[0]
        if len(found) == 1:
            return found[0]
        raise PermanentError(
            f"SCIM users at {self.host}: {len(found)} users match {user_name!r} by userName or "
            "externalId; refused (a person is never merged with another account)"
        )

    def _is_member(self, scim: SyncSCIMClient, group_id: str, user_id: str) -> bool:
        flt = f"id eq {quote(group_id)} and members.value eq {quote(user_id)}"
        return bool(self._search(scim, Group, flt, ["id"], count=1))

    def _create_user(self, scim: SyncSCIMClient, principal: PrincipalRef) -> tuple[User, bool]:
        """The new user and True; or, when a concurrent grant created it first (409), that
        user and False."""
        email = principal.email.strip().lower()
        emails = None
        if email:
            try:
                emails = [Email(value=email, primary=True)]
            except PydanticValidationError:
                # scim2-models refuses special-use domains (.test, .internal, …) as e-mail
                # values; the address still names the user as userName and externalId.
                emails = None
        user: User = User(
            user_name=self.login_for(principal),
            external_id=email or None,
            active=True,
            emails=emails,
        )
        try:
            created: Any = scim.create(user)
            return cast(User, created), True
        except SCIMException as exc:
            if getattr(exc, "status", None) not in (409, "409"):
                raise
        # Someone created it meanwhile (a concurrent grant): use that one, never a second.
        existing = self._find_user(scim, principal)
        if existing is None:
            raise PermanentError(
                f"SCIM users at {self.host}: creating {self.login_for(principal)!r} answered 409 "
                "but no user matches its userName or externalId"
            )
        return existing, False

    def _set_active(self, scim: SyncSCIMClient, user_id: str, active: bool) -> None:
        scim.modify(
            User, user_id, patch(User, {"op": "replace", "path": "active", "value": active})
        )

    # Operations ------------------------------------------------------------------------
    def grant(
        self, principal: PrincipalRef, entitlement: EntitlementRef, *, idempotency_key: str
    ) -> Result:
        group = self.group_for(entitlement)
        user_name = self.login_for(principal)
        with self._session("grant") as scim:
            group_id = self._group_id(scim, group)
            user = self._find_user(scim, principal)
            notes = []
            created = False
            if user is None:
                user, created = self._create_user(scim, principal)
                if created:
                    notes.append("user created")
            elif user.active is False:
                self._set_active(scim, str(user.id), True)
                notes.append("user reactivated")
            user_id = str(user.id)
            # A user made just now is in no group yet: no need to ask.
            if not created and self._is_member(scim, group_id, user_id):
                return Result(
                    changed=bool(notes),
                    detail=f"{user_name} is already a member of {group}"
                    + (f" ({', '.join(notes)})" if notes else ""),
                )
            scim.modify(
                Group,
                group_id,
                patch(Group, {"op": "add", "path": "members", "value": [{"value": user_id}]}),
            )
        note = f" ({', '.join(notes)})" if notes else ""
        return Result(changed=True, detail=f"added {user_name} to SCIM group {group}{note}")

    def revoke(
        self, principal: PrincipalRef, entitlement: EntitlementRef, *, idempotency_key: str
    ) -> Result:
        group = self.group_for(entitlement)
        user_name = self.login_for(principal)
        with self._session("revoke") as scim:
            group_id = self._group_id(scim, group)
            user = self._find_user(scim, principal)
            if user is None:
                return Result(changed=False, detail=f"{user_name} has no SCIM user at {self.host}")
            user_id = str(user.id)
            if not self._is_member(scim, group_id, user_id):
                return Result(changed=False, detail=f"{user_name} is not a member of {group}")
            scim.modify(
                Group,
                group_id,
                patch(Group, {"op": "remove", "path": f"members[value eq {quote(user_id)}]"}),
            )
            if self._is_member(scim, group_id, user_id):
                raise PermanentError(
                    f"SCIM group {group} at {self.host} still lists {user_name} after PATCH remove"
                )
            note = ""
            if self.deactivate_when_unused and user.active is not False:
                in_any = self._search(
                    scim, Group, f"members.value eq {quote(user_id)}", ["id"], count=1
                )
                if not in_any:
                    self._set_active(scim, user_id, False)
                    note = " (user deactivated: in no group any more)"
        return Result(changed=True, detail=f"removed {user_name} from SCIM group {group}{note}")

    def list_holders(
        self,
        entitlement: EntitlementRef | None = None,
        *,
        cursor: str | None = None,
        page_size: int = 500,
    ) -> Page:
        """Members of the entitlement's group (or of every group in the ``groups`` map), in
        (entitlement, member id) order; the cursor is the last (entitlement, member id)."""
        page_size = self.check_page_size(page_size)
        if entitlement is not None:
            targets = [(entitlement.slug, self.group_for(entitlement))]
        elif self.groups:
            targets = sorted(self.groups.items())
        else:
            raise ConfigError("scim connector: listing all holders needs a groups map")
        after = decode_pair_cursor(cursor)
        holders: list[Holder] = []
        with self._session("list holders") as scim:
            for slug, group in targets:
                if after is not None and slug < after[0]:
                    continue
                group_id = self._group_id(scim, group)
                loaded: Any = scim.query(
                    Group, group_id, query_parameters={"attributes": ["members"]}
                )
                ids = sorted(
                    {
                        str(member.value)
                        for member in (loaded.members or [])
                        if member.value and (member.type or "User") == "User"
                    }
                )
                if after is not None and slug == after[0]:
                    ids = [member_id for member_id in ids if member_id > after[1]]
                room = page_size - len(holders)
                chunk, more = ids[:room], len(ids) > room
                names = self._user_names(scim, chunk)
                holders.extend(
                    Holder(principal=names[member_id], entitlement=slug, level="member")
                    for member_id in chunk
                    if member_id in names
                )
                if more:
                    return Page(tuple(holders), encode_pair_cursor(slug, chunk[-1]))
                if len(holders) >= page_size and (slug, group) != targets[-1]:
                    return Page(tuple(holders), encode_pair_cursor(slug, "\uffff"))
        return Page(tuple(holders), None)

    def _user_names(self, scim: SyncSCIMClient, ids: list[str]) -> dict[str, str]:
        if not ids:
            return {}
        flt = " or ".join(f"id eq {quote(member_id)}" for member_id in ids)
        users = self._search(scim, User, flt, ["id", "userName"], count=len(ids))
        return {str(user.id): str(user.user_name) for user in users if user.user_name}

    def health(self) -> Health:
        """One authenticated read of at most one user id, with ``health_timeout``."""
        started = time.perf_counter()
        try:
            with self._session("health check", timeout=self.health_timeout) as scim:
                self._search(scim, User, None, ["id"], count=1)
        except (TransientError, PermanentError) as exc:
            return Health(False, exc.message, elapsed_ms(started))
        except Exception as exc:  # never raises
            return Health(False, f"SCIM health check failed: {type(exc).__name__}")
        return Health(True, f"SCIM at {self.host} answers", elapsed_ms(started))
