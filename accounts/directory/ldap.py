"""The LDAP directory source: people (and their teams) read from LDAP into directory rows.

Pure with respect to Tollgate: it reads LDAP and returns a :class:`DirectoryInput` of the
same rows a directory file holds (``email``, ``name``, ``team``, ``manager_email``,
``worker_type``, ``status``, ``start_date``), which ``accounts.sources`` applies through the
one directory service (validation, plan, joiners, movers, leavers, the mass-leave hold).

Configuration (``settings.TOLLGATE_LDAP_DIRECTORY``, a JSON object from the environment)::

    {
      "url": "ldaps://ldap.corp.example", "security": "ldaps", "ca_file": "/etc/ssl/corp-ca.pem",
      "bind_dn": "cn=tollgate,ou=services,dc=corp,dc=example",
      "password_env": "TOLLGATE_LDAP_DIRECTORY_PASSWORD",
      "people_base": "ou=people,dc=corp,dc=example",
      "people_filter": "(objectClass=inetOrgPerson)",
      "attributes": {"email": "mail", "name": "cn", "manager": "manager",
                     "team": "departmentNumber", "worker_type": "employeeType",
                     "disabled": "", "start_date": "createTimestamp"},
      "team_groups_base": "",          # set: a person's team is the cn of the group below it
      "team_group_filter": "(objectClass=groupOfNames)",   # ... that lists them in member
      "default_team": "",              # team of a person without one (else the row is an error)
      "contractor_values": ["contractor", "external", "temporary"],
      "disabled_values": [],           # empty: the disabled attribute's presence disables
      "page_size": 500, "timeout": 10
    }

Incremental reads add ``(modifyTimestamp>=T)`` (T the highest ``modifyTimestamp`` of the
last applied run, from the server's own clock); in group mode the members of team groups
modified since T are read as well, since moving someone between groups changes the groups,
not the person.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import ldap3

from connectors.base import ConfigError
from connectors.ldap import transport

from .reading import DirectoryInput, RawRow

DEFAULT_ATTRIBUTES = {
    "email": "mail",
    "name": "cn",
    "manager": "manager",
    "team": "departmentNumber",
    "worker_type": "employeeType",
    "disabled": "",
    "start_date": "createTimestamp",
}
DEFAULT_CONTRACTOR_VALUES = ("contractor", "external", "temporary")
_GENERALIZED = re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{2})?(\d{2})?(\d{2})?")
_FILTER = re.compile(r"^\(.*\)$", re.DOTALL)


def team_slug(value: str) -> str:
    """A team slug from a department name or group cn (``Data Platform`` -> ``data-platform``)."""
    return re.sub(r"[^a-z0-9]+", "-", value.strip().lower()).strip("-")[:80].strip("-")


def generalized_date(value: str) -> date | None:
    """The date of an LDAP GeneralizedTime (``20261206043000Z``) or an ISO date."""
    match = _GENERALIZED.match(value.strip())
    if match:
        try:
            return date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            return None
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


@dataclass(frozen=True)
class SourceConfig:
    endpoint: transport.Endpoint
    bind_dn: str
    password_env: str
    people_base: str
    people_filter: str
    attributes: Mapping[str, str]
    team_groups_base: str
    team_group_filter: str
    default_team: str
    contractor_values: frozenset[str]
    disabled_values: frozenset[str]
    page_size: int

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> SourceConfig:
        if not isinstance(config, Mapping) or not config:
            raise ConfigError("LDAP directory source is not configured (TOLLGATE_LDAP_DIRECTORY)")
        who = "LDAP directory source"
        endpoint = transport.Endpoint.from_config(config, who=who)
        bind_dn = transport.check_dn(config.get("bind_dn"), what="bind_dn")
        password_env = config.get("password_env")
        if not isinstance(password_env, str) or not re.match(
            r"^TOLLGATE_[A-Z0-9_]+$", password_env
        ):
            raise ConfigError(
                f"{who}: password_env must name a TOLLGATE_* environment variable holding the "
                "bind password"
            )
        people_filter = config.get("people_filter", "(objectClass=inetOrgPerson)")
        if not isinstance(people_filter, str) or not _FILTER.match(people_filter):
            raise ConfigError(f"{who}: people_filter must be an LDAP filter in parentheses")
        group_filter = config.get("team_group_filter", "(objectClass=groupOfNames)")
        if not isinstance(group_filter, str) or not _FILTER.match(group_filter):
            raise ConfigError(f"{who}: team_group_filter must be an LDAP filter in parentheses")
        given = config.get("attributes", {}) or {}
        if not isinstance(given, Mapping) or set(given) - set(DEFAULT_ATTRIBUTES):
            raise ConfigError(
                f"{who}: attributes maps {', '.join(DEFAULT_ATTRIBUTES)} to LDAP attribute names"
            )
        attributes = {}
        for key, default in DEFAULT_ATTRIBUTES.items():
            value = given.get(key, default)
            if value or key not in ("disabled", "manager", "worker_type"):
                value = transport.attribute_name(value, what=f"attributes.{key}")
            attributes[key] = (value or "").lower()
        groups_base = config.get("team_groups_base") or ""
        if groups_base:
            groups_base = transport.check_dn(groups_base, what="team_groups_base")
        default_team = config.get("default_team") or ""
        if default_team and team_slug(default_team) != default_team:
            raise ConfigError(f"{who}: default_team must be a team slug")
        page_size = config.get("page_size", 500)
        if not isinstance(page_size, int) or isinstance(page_size, bool) or not page_size >= 1:
            raise ConfigError(f"{who}: page_size must be a positive integer")

        def words(key: str, default=()) -> frozenset[str]:
            value = config.get(key, list(default))
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{who}: {key} must be a list of strings")
            return frozenset(v.strip().lower() for v in value)

        return cls(
            endpoint=endpoint,
            bind_dn=bind_dn,
            password_env=password_env,
            people_base=transport.check_dn(config.get("people_base"), what="people_base"),
            people_filter=people_filter,
            attributes=attributes,
            team_groups_base=groups_base,
            team_group_filter=group_filter,
            default_team=default_team,
            contractor_values=words("contractor_values", DEFAULT_CONTRACTOR_VALUES),
            disabled_values=words("disabled_values"),
            page_size=min(page_size, 10_000),
        )


@dataclass
class LdapRead:
    """What one read of the directory returned."""

    input: DirectoryInput
    dns: dict[int, str] = field(default_factory=dict)  # row number -> entry DN
    high_water: str | None = None  # highest modifyTimestamp seen (server clock)
    skipped: list[str] = field(default_factory=list)  # DNs without an e-mail address
    full: bool = False

    def where(self, row: int) -> str:
        return self.dns.get(row, "")


def _first(attrs: Mapping[str, list[str]], name: str) -> str:
    values = attrs.get(name.lower()) if name else None
    return values[0].strip() if values else ""


def read_people(config: SourceConfig, *, password: str, since: str | None = None) -> LdapRead:
    """Read people (all, or those modified at or after ``since``) into directory rows."""
    attrs = config.attributes
    wanted = sorted(
        {a for a in attrs.values() if a} | {"modifytimestamp", "createtimestamp", "objectclass"}
    )
    where = config.endpoint.label
    changed_filter = config.people_filter
    if since:
        stamp = transport.escape_filter_chars(since)
        changed_filter = f"(&{config.people_filter}(modifyTimestamp>={stamp}))"
    result = LdapRead(input=DirectoryInput(rows=[], fmt="ldap"), full=since is None)
    with transport.connect(
        config.endpoint, bind_dn=config.bind_dn, password=password, action="directory read"
    ) as conn:
        team_of: dict[str, str] = {}
        extra: set[str] = set()
        if config.team_groups_base:
            team_of, extra = _team_groups(conn, config, since=since)
        entries: dict[str, dict[str, list[str]]] = {}
        for dn, values in transport.paged_entries(
            conn,
            config.people_base,
            changed_filter,
            attributes=wanted,
            page_size=config.page_size,
            action="directory read",
            where=where,
        ):
            entries[transport.norm_dn(dn)] = {"_dn": [dn], **values}
        # in group mode, people whose team group changed (they moved) are read too
        for member in sorted(extra - set(entries)):
            if not transport.under(member, config.people_base):
                continue
            for dn, values in transport.paged_entries(
                conn,
                member,
                config.people_filter,
                attributes=wanted,
                scope=ldap3.BASE,
                action="directory read",
                where=where,
            ):
                entries[transport.norm_dn(dn)] = {"_dn": [dn], **values}
        mail_of = {key: _first(values, attrs["email"]).lower() for key, values in entries.items()}
        if attrs["manager"]:
            wanted_managers = {
                transport.norm_dn(_first(values, attrs["manager"]))
                for values in entries.values()
                if _first(values, attrs["manager"])
            } - set(mail_of)
            mail_of.update(_mails(conn, config, wanted_managers))
    number = 0
    for key in sorted(entries):
        values = entries[key]
        dn = values["_dn"][0]
        stamp = _first(values, "modifytimestamp")
        if stamp and (result.high_water is None or stamp > result.high_water):
            result.high_water = stamp
        email = mail_of.get(key, "")
        if not email:
            result.skipped.append(dn)
            continue
        number += 1
        result.input.rows.append(RawRow(number, _row(config, values, key, team_of, mail_of)))
        result.dns[number] = dn
    return result


def _row(config: SourceConfig, values, key: str, team_of, mail_of) -> dict[str, object]:
    attrs = config.attributes
    if config.team_groups_base:
        team = team_of.get(key, "")
    else:
        team = team_slug(_first(values, attrs["team"]))
    team = team or config.default_team
    manager_dn = _first(values, attrs["manager"]) if attrs["manager"] else ""
    manager = mail_of.get(transport.norm_dn(manager_dn), "") if manager_dn else ""
    kind = _first(values, attrs["worker_type"]).lower() if attrs["worker_type"] else ""
    worker_type = "contractor" if kind in config.contractor_values else "employee"
    disabled = False
    if attrs["disabled"]:
        flags = [v.strip().lower() for v in values.get(attrs["disabled"], [])]
        disabled = bool(flags) and (
            not config.disabled_values or any(v in config.disabled_values for v in flags)
        )
    started = generalized_date(_first(values, attrs["start_date"])) or generalized_date(
        _first(values, "createtimestamp")
    )
    return {
        "email": mail_of.get(key, ""),
        "name": _first(values, attrs["name"]) or mail_of.get(key, ""),
        "team": team,
        "manager_email": manager,
        "worker_type": worker_type,
        "status": "leaver" if disabled else "active",
        "start_date": started.isoformat() if started else "",
    }


def _team_groups(
    conn, config: SourceConfig, *, since: str | None
) -> tuple[dict[str, str], set[str]]:
    """(member DN -> team slug, members of groups modified since ``since``). A person in
    several team groups belongs to the first by slug."""
    team_of: dict[str, str] = {}
    touched: set[str] = set()
    for _dn, values in transport.paged_entries(
        conn,
        config.team_groups_base,
        config.team_group_filter,
        attributes=["cn", "member", "modifyTimestamp"],
        page_size=config.page_size,
        action="directory read",
        where=config.endpoint.label,
    ):
        slug = team_slug(_first(values, "cn"))
        if not slug:
            continue
        changed = bool(since) and _first(values, "modifytimestamp") >= (since or "")
        for member in values.get("member", []):
            if not member.strip():
                continue
            key = transport.norm_dn(member)
            if key not in team_of or slug < team_of[key]:
                team_of[key] = slug
            if changed:
                touched.add(key)
    return team_of, touched


def _mails(conn, config: SourceConfig, dns: set[str]) -> dict[str, str]:
    """E-mail addresses of the entries ``dns`` (managers outside the rows read)."""
    mails: dict[str, str] = {}
    attr = config.attributes["email"]
    for dn in sorted(dns):
        ok = conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=[attr])
        if not ok:
            continue
        for entry in conn.response or ():
            if entry.get("type") == "searchResEntry":
                raw_attrs = {k.lower(): v for k, v in (entry.get("raw_attributes") or {}).items()}
                raw = raw_attrs.get(attr) or []
                if raw:
                    mails[dn] = transport._text(raw[0]).strip().lower()
    return mails
