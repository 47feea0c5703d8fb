"""Helpers for the LDAP connector tests: a connector configured against the test slapd."""

from __future__ import annotations

from connectors.base import PrincipalRef
from connectors.ldap import LdapGroupConnector
from tests.support import slapd as slapd_support

PASSWORD_ENV = "TOLLGATE_LDAP_TEST_PASSWORD"

#: uids (and e-mail local parts) of the test people; two carry RFC 4514 special characters
UIDS = ("ann", "bob", "cat", "o+brien", "dee.x", "eve")


def ldap_config(server, **overrides) -> dict:
    config = {
        "url": server.url,
        "security": "starttls",
        "ca_file": str(server.ca_file),
        "bind_dn": server.service_dn,
        "password_env": PASSWORD_ENV,
        "base": server.groups,
        "people_base": server.people,
        "user_object_class": "inetOrgPerson",
        "groups": {"readers": "readers", "shell": "shell-users"},
        "timeout": 5,
    }
    config.update(overrides)
    return config


def ldap_connector(server, **overrides) -> LdapGroupConnector:
    return LdapGroupConnector(ldap_config(server, **overrides))


def add_people(server, uids=UIDS) -> list[PrincipalRef]:
    people = []
    for uid in uids:
        server.add_person(uid, mail=f"{uid}@corp.test", cn=uid.title())
        people.append(PrincipalRef(email=f"{uid}@corp.test"))
    return people


def unreachable(server, **overrides) -> LdapGroupConnector:
    return ldap_connector(server, url=f"ldap://127.0.0.1:{slapd_support.free_port()}", **overrides)
