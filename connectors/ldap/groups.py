"""LDAP group connector (``ldap``): entitlements are groups, holders are their members.

Service ``connector_config`` (non-secret; the password comes from the environment)::

    {
      "url": "ldaps://ldap.corp.example:636",     # or ldap://host:389 with StartTLS
      "security": "ldaps",                         # ldaps | starttls | plain (explicit only)
      "ca_file": "/etc/ssl/corp-ca.pem",           # CA that signs the server (default: system)
      "bind_dn": "cn=tollgate,ou=services,dc=corp,dc=example",  # or "bind_dn_env": "TOLLGATE_…"
      "password_env": "TOLLGATE_LDAP_PASSWORD",    # required: env var holding the bind password
      "base": "ou=groups,dc=corp,dc=example",      # required: groups live at or below it
      "people_base": "ou=people,dc=corp,dc=example",  # required: people are found below it
      "user_attribute": "uid",                     # people's login attribute (and memberUid)
      "user_object_class": "person",
      "groups": {"analytics-read": "analytics-readers"},  # entitlement slug -> cn (or DN)
      "login_from": "email_local",                 # email_local | email | login
      "search_page_size": 500,                     # paged results page size (group search)
      "timeout": 10
    }

An entitlement's group is ``EntitlementRef.config["group"]`` or ``groups[slug]``: a ``cn``
(the DN is ``cn=<escaped>,<base>``) or a full DN below ``base``. The group's object class
decides the attribute: ``groupOfNames`` keeps member DNs in ``member``, ``posixGroup`` uids in
``memberUid`` (a group with both classes keeps both).

* ``grant`` finds the person's entry below ``people_base`` by ``(&(objectClass=…)(uid=…))``
  and adds the membership; ``revoke`` removes it. Both are single LDAP modify operations:
  an existing value (``attributeOrValueExists``) or an absent one (``noSuchAttribute``) is a
  no-op with ``changed=False``, so repeats and concurrent calls are safe. The last member of
  a ``groupOfNames`` (whose schema requires one) is swapped for an empty placeholder value.
* ``list_holders`` reads the groups (with an entitlement: its group; without: the groups of
  the ``groups`` map, or every group below ``base`` found by a paged search) and pages over
  their members in (group DN, login) order with a keyset cursor.
* Every DN and filter built from a name is escaped (RFC 4514 / 4515, ldap3's helpers), never
  concatenated raw: ``*)(uid=*`` is a literal uid, ``a,ou=admins`` a literal RDN value.

A holder's principal is the person's login (``user_attribute`` value, lower case) when the
member DN is ``<user_attribute>=<login>,…`` below ``people_base``; any other member DN is
reported as the DN itself (normalised), so reconciliation can revoke it.
"""

from __future__ import annotations

import bisect
import re
import time

import ldap3

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
    decode_pair_cursor,
    elapsed_ms,
    encode_pair_cursor,
)

from . import transport
from .transport import Endpoint, attribute_name, check_dn, eq_filter, norm_dn, rdn

LOGIN_MODES = ("email_local", "email", "login")
GROUP_CLASSES = {"groupofnames": "member", "posixgroup": "memberuid"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_LOGIN = 256
_PLAIN_VALUE = re.compile(r'^[^\s,+"\\<>;=#][^,+"\\<>;=]*(?<!\s)$')
#: how long a group read is reused while a caller pages through it (snapshot per iteration)
MEMO_SECONDS = 30.0


class GroupMissing(PermanentError):
    """The entitlement's group does not exist downstream."""


def _plain_login(value: str) -> str:
    value = value.strip()
    if not value or len(value) > MAX_LOGIN or _CONTROL.search(value):
        raise ConfigError(
            f"ldap: {value[:40]!r} is not a usable login (1 to {MAX_LOGIN} printable characters)"
        )
    return value.lower()


def _is_dn(value: str) -> bool:
    """A login that parses as a DN of two or more RDNs is a DN (a member found downstream)."""
    if "=" not in value or "," not in value:
        return False
    try:
        return len(ldap3.utils.dn.parse_dn(value)) >= 2
    except Exception:  # noqa: BLE001 - anything unparsable is a plain login
        return False


class LdapGroupConnector(Connector):
    name = "ldap"
    env_keys = ("password_env", "bind_dn_env")
    required_keys = ("url", "password_env", "base", "people_base")
    supports_list_holders = True

    def __init__(self, config=None):
        super().__init__(config)
        cfg = self.config
        self.endpoint = Endpoint.from_config(cfg, who="ldap connector")
        if not cfg.get("bind_dn") and not cfg.get("bind_dn_env"):
            raise ConfigError("ldap connector: set bind_dn or bind_dn_env (the service account)")
        if cfg.get("bind_dn"):
            check_dn(cfg["bind_dn"], what="bind_dn")
        self.base = check_dn(cfg["base"], what="base")
        self.people_base = check_dn(cfg["people_base"], what="people_base")
        self.user_attribute = attribute_name(
            cfg.get("user_attribute", "uid"), what="user_attribute"
        ).lower()
        self.user_object_class = attribute_name(
            cfg.get("user_object_class", "person"), what="user_object_class"
        )
        self.login_from = cfg.get("login_from", "email_local")
        if self.login_from not in LOGIN_MODES:
            raise ConfigError(f"ldap connector: login_from must be one of {', '.join(LOGIN_MODES)}")
        groups = cfg.get("groups", {})
        if not isinstance(groups, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in groups.items()
        ):
            raise ConfigError("ldap connector: groups must map entitlement slugs to group names")
        self.groups: dict[str, str] = {
            slug: self._group_dn(value) for slug, value in groups.items()
        }
        self._people_norm = norm_dn(self.people_base)
        # (group DN, sorted logins, when read): reused only for the next page of a listing
        self._memo: tuple[str, list[str], float] | None = None
        self.search_page_size = cfg.get("search_page_size", 500)
        if not isinstance(self.search_page_size, int) or not 1 <= self.search_page_size <= 10_000:
            raise ConfigError("ldap connector: search_page_size must be 1 to 10000")

    # Declaration -----------------------------------------------------------------------
    def describe(self) -> ConnectorDescription:
        return ConnectorDescription(
            name=self.name,
            resource_types=(
                ResourceType("group", "LDAP groupOfNames or posixGroup; holders are members"),
            ),
            entitlements=tuple(
                EntitlementSpec(slug=slug, resource_type="group", name=dn, config={"group": dn})
                for slug, dn in sorted(self.groups.items())
            ),
            supports_list_holders=True,
            notes=f"{self.endpoint.label} ({self.endpoint.security}); groups below {self.base}",
        )

    def _group_dn(self, value: str) -> str:
        value = value.strip()
        if _is_dn(value):
            dn = check_dn(value, what="group")
            if not transport.under(dn, self.base) or norm_dn(dn) == norm_dn(self.base):
                raise ConfigError(f"ldap connector: group {dn} is not below base {self.base}")
            return dn
        return f"{rdn('cn', value)},{self.base}"

    def group_for(self, entitlement: EntitlementRef) -> str:
        value = (entitlement.config or {}).get("group") or self.groups.get(entitlement.slug)
        if not value or not isinstance(value, str):
            raise ConfigError(
                f"entitlement {entitlement.service_slug}/{entitlement.slug} names no LDAP group: "
                "set its config {'group': ...} or the service's connector_config groups map"
            )
        if value in self.groups.values():
            return value
        return self._group_dn(value)

    def login_for(self, principal: PrincipalRef) -> str:
        """The person's login (their ``user_attribute`` value), or a member DN found downstream.

        An explicit ``principal.login`` (outside ``login_from=login``) is an identity found
        downstream and is used as it is: a DN stays a DN (normalised), a uid is lower-cased.
        """
        if principal.login and self.login_from != "login":
            login = principal.login.strip()
            return norm_dn(login) if _is_dn(login) else _plain_login(login)
        if self.login_from == "login":
            if not principal.login:
                raise ConfigError(f"principal {principal.email} has no login (login_from=login)")
            return _plain_login(principal.login)
        email = principal.email.strip().lower()
        if self.login_from == "email":
            return _plain_login(email)
        return _plain_login(email.partition("@")[0])

    def principal_of(self, member_dn: str) -> str | None:
        """The login of a member DN ``<user_attribute>=x,…`` below people_base, else the DN."""
        if not member_dn.strip():
            return None  # the placeholder of an otherwise empty groupOfNames
        # fast path (most values): "uid=plain,<people_base>" with nothing escaped
        head, sep, tail = member_dn.partition(",")
        if sep and tail.lower() == self._people_norm:
            attr, eq, value = head.partition("=")
            if eq and attr.strip().lower() == self.user_attribute and _PLAIN_VALUE.match(value):
                return value.lower()
        first = transport.first_rdn(member_dn)
        if first is not None and first[0] == self.user_attribute:
            normal = norm_dn(member_dn)
            if normal.endswith("," + self._people_norm):
                return first[1].lower()
        return norm_dn(member_dn)

    # Plumbing --------------------------------------------------------------------------
    def _connection(self, action: str):
        bind_dn = self.config.get("bind_dn") or self.secret_from_env("bind_dn_env")
        password = self.secret_from_env("password_env")
        return transport.connect(self.endpoint, bind_dn=bind_dn, password=password, action=action)

    def _read_group(self, conn, dn: str, *, action: str) -> dict[str, list[str]]:
        ok = conn.search(
            dn,
            "(objectClass=*)",
            search_scope=ldap3.BASE,
            attributes=["objectClass", "member", "memberUid"],
        )
        code = int((conn.result or {}).get("result") or 0)
        if code == 32 or (ok and not conn.response):
            raise GroupMissing(f"LDAP group {dn} does not exist")
        if not ok:
            raise transport.result_error(conn.result, action=action, where=self.endpoint.label)
        entry = next(e for e in conn.response if e.get("type") == "searchResEntry")
        attrs = {
            key.lower(): [transport._text(v) for v in values]
            for key, values in (entry.get("raw_attributes") or {}).items()
        }
        classes = {c.lower() for c in attrs.get("objectclass", [])}
        kinds = [attr for cls, attr in GROUP_CLASSES.items() if cls in classes]
        if not kinds:
            raise PermanentError(
                f"LDAP entry {dn} is not a groupOfNames or posixGroup and cannot be an entitlement"
            )
        attrs["_kinds"] = kinds
        return attrs

    def _find_person(self, conn, login: str) -> tuple[str, str]:
        """(entry DN, login value) of the person below people_base; PermanentError if none."""
        if _is_dn(login):
            if not login.endswith("," + self._people_norm):
                raise PermanentError(f"{login} is not below people_base {self.people_base}")
            base, scope, flt = login, ldap3.BASE, f"(objectClass={self.user_object_class})"
        else:
            base, scope = self.people_base, ldap3.SUBTREE
            flt = (
                f"(&(objectClass={self.user_object_class}){eq_filter(self.user_attribute, login)})"
            )
        ok = conn.search(
            base, flt, search_scope=scope, attributes=[self.user_attribute], size_limit=2
        )
        code = int((conn.result or {}).get("result") or 0)
        if not ok and code not in (0, 4, 32):
            raise transport.result_error(conn.result, action="grant", where=self.endpoint.label)
        found = [e for e in conn.response or () if e.get("type") == "searchResEntry"]
        if not found:
            raise PermanentError(
                f"no LDAP entry for {self.user_attribute} {login!r} below {self.people_base}"
            )
        if len(found) > 1:
            raise PermanentError(
                f"more than one LDAP entry has {self.user_attribute} {login!r}: refused"
            )
        values = (found[0].get("raw_attributes") or {}).get(self.user_attribute) or [b""]
        return found[0]["dn"], transport._text(values[0])

    def _modify(self, conn, dn: str, changes: dict, *, action: str) -> int:
        conn.modify(dn, changes)
        code = int((conn.result or {}).get("result") or 0)
        if code not in (0, 16, 20, 65):
            raise transport.result_error(conn.result, action=action, where=self.endpoint.label)
        return code

    # Operations ------------------------------------------------------------------------
    def grant(
        self, principal: PrincipalRef, entitlement: EntitlementRef, *, idempotency_key: str
    ) -> Result:
        group = self.group_for(entitlement)
        login = self.login_for(principal)
        changed = False
        self._memo = None
        with self._connection("grant") as conn:
            attrs = self._read_group(conn, group, action="grant")
            person_dn, uid = self._find_person(conn, login)
            for attr in attrs["_kinds"]:
                value = person_dn if attr == "member" else uid
                code = self._modify(
                    conn, group, {attr: [(ldap3.MODIFY_ADD, [value])]}, action="grant"
                )
                if code == 65:
                    raise transport.result_error(
                        conn.result, action="grant", where=self.endpoint.label
                    )
                changed = changed or code == 0
            if changed and "member" in attrs["_kinds"] and "" in attrs.get("member", []):
                # the placeholder of an empty groupOfNames is no longer needed
                self._modify(conn, group, {"member": [(ldap3.MODIFY_DELETE, [""])]}, action="grant")
        if not changed:
            return Result(changed=False, detail=f"{login} is already a member of {group}")
        return Result(changed=True, detail=f"added {login} to {group}")

    def revoke(
        self, principal: PrincipalRef, entitlement: EntitlementRef, *, idempotency_key: str
    ) -> Result:
        group = self.group_for(entitlement)
        login = self.login_for(principal)
        changed = False
        self._memo = None
        with self._connection("revoke") as conn:
            attrs = self._read_group(conn, group, action="revoke")
            try:
                person_dn, uid = self._find_person(conn, login)
            except PermanentError:
                # the person's entry is gone: remove what a member value for them would be
                if _is_dn(login):
                    person_dn = login
                    first = transport.first_rdn(login)
                    uid = first[1] if first else login
                else:
                    person_dn, uid = f"{rdn(self.user_attribute, login)},{self.people_base}", login
            for attr in attrs["_kinds"]:
                value = person_dn if attr == "member" else uid
                code = self._modify(
                    conn, group, {attr: [(ldap3.MODIFY_DELETE, [value])]}, action="revoke"
                )
                if code == 65 and attr == "member":
                    # the last member of a groupOfNames: swap it for the empty placeholder
                    code = self._modify(
                        conn,
                        group,
                        {"member": [(ldap3.MODIFY_ADD, [""]), (ldap3.MODIFY_DELETE, [value])]},
                        action="revoke",
                    )
                    if code == 65:
                        raise transport.result_error(
                            conn.result, action="revoke", where=self.endpoint.label
                        )
                changed = changed or code == 0
        if not changed:
            return Result(changed=False, detail=f"{login} is not a member of {group}")
        return Result(changed=True, detail=f"removed {login} from {group}")

    def _all_groups(self, conn) -> list[str]:
        """Every groupOfNames or posixGroup below base (paged search: no size limit bites)."""
        flt = "(|(objectClass=groupOfNames)(objectClass=posixGroup))"
        return [
            dn
            for dn, _ in transport.paged_entries(
                conn,
                self.base,
                flt,
                attributes=["1.1"],
                page_size=self.search_page_size,
                action="list groups",
                where=self.endpoint.label,
            )
        ]

    def _members(self, attrs: dict[str, list[str]]) -> list[str]:
        logins: set[str] = set()
        for attr in attrs["_kinds"]:
            for value in attrs.get(attr, []):
                login = self.principal_of(value) if attr == "member" else value.strip().lower()
                if login:
                    logins.add(login)
        return sorted(logins)

    def list_holders(
        self,
        entitlement: EntitlementRef | None = None,
        *,
        cursor: str | None = None,
        page_size: int = 500,
    ) -> Page:
        """Members in (group DN, login) order, ``page_size`` at a time, keyset cursor."""
        page_size = self.check_page_size(page_size)
        after = decode_pair_cursor(cursor)
        holders: list[Holder] = []
        last = ("", "")
        with self._connection("list holders") as conn:
            if entitlement is not None:
                groups = [(norm_dn(self.group_for(entitlement)), entitlement.slug)]
            else:
                slug_of = {norm_dn(dn): slug for slug, dn in self.groups.items()}
                if self.groups:
                    groups = sorted(slug_of.items())
                else:
                    found = {norm_dn(dn): "" for dn in self._all_groups(conn)}
                    groups = sorted(found.items())
            for dn, slug in groups:
                if after is not None and dn < after[0]:
                    continue
                memo = self._memo
                if (
                    after is not None
                    and memo is not None
                    and memo[0] == dn
                    and time.monotonic() - memo[2] < MEMO_SECONDS
                ):
                    members = memo[1]  # the next page of the group read for the previous one
                else:
                    try:
                        attrs = self._read_group(conn, dn, action="list holders")
                    except GroupMissing:
                        if entitlement is not None:
                            raise
                        continue  # a mapped group not created yet holds nobody
                    members = self._members(attrs)
                    self._memo = (dn, members, time.monotonic())
                if after is not None and dn == after[0]:
                    members = members[bisect.bisect_right(members, after[1]) :]
                label = slug or (transport.first_rdn(dn) or ("", dn))[1]
                for member in members:
                    if len(holders) == page_size:
                        return Page(tuple(holders), encode_pair_cursor(*last))
                    holders.append(Holder(principal=member, entitlement=label, level="member"))
                    last = (dn, member)
        return Page(tuple(holders), None)

    def health(self) -> Health:
        started = time.perf_counter()
        try:
            with self._connection("health check") as conn:
                ok = conn.search(
                    self.base, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["1.1"]
                )
                if not ok:
                    raise transport.result_error(
                        conn.result, action="health check", where=self.endpoint.label
                    )
        except Exception as exc:  # noqa: BLE001 - health never raises
            message = (
                getattr(exc, "message", None) or f"LDAP health check failed: {type(exc).__name__}"
            )
            return Health(False, message, elapsed_ms(started))
        return Health(
            True,
            f"{self.endpoint.label} answers; {self.base} readable",
            elapsed_ms(started),
        )
