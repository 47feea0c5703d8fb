"""The LDAP connector beyond the shared contract: escaping (no LDAP injection), TLS for real,
configuration checks, unmanaged members, and the paged group search. Real slapd throughout."""

from __future__ import annotations

import ldap3
import pytest
from ldap3.utils.dn import parse_dn

from access.services.reconciliation import principal_for_login
from connectors.base import (
    ConfigError,
    EntitlementRef,
    Holder,
    PermanentError,
    PrincipalRef,
    TransientError,
)
from connectors.ldap import LdapGroupConnector, transport
from connectors.registry import check_config_secrets, get_connector
from tests.connectors.ldap_support import PASSWORD_ENV, add_people, ldap_config, ldap_connector

READERS = EntitlementRef("directory", "readers")


def members(server, cn="readers") -> list[str]:
    return sorted(v for v in server.values(f"cn={cn},{server.groups}", "member") if v)


# --- LDAP injection: names are escaped, never concatenated ------------------------------------


def test_filter_and_rdn_escaping_follow_rfc_4515_and_4514():
    assert transport.eq_filter("uid", "*)(uid=*") == r"(uid=\2a\29\28uid=\2a)"
    assert transport.eq_filter("uid", "a\\b\x00") == r"(uid=a\5cb\00)"
    assert transport.rdn("uid", "a,ou=admins") == r"uid=a\,ou\=admins"
    assert transport.rdn("cn", "x+uid=root") == r"cn=x\+uid\=root"
    assert transport.rdn("cn", "back\\slash") == r"cn=back\\slash"
    # each escaped value stays one RDN: the DN does not gain components
    assert len(parse_dn(transport.rdn("uid", "a,ou=admins") + ",ou=people,dc=t")) == 3


@pytest.mark.parametrize("login", ["*)(uid=*", "*", "ann)(|(uid=*", "ann,ou=people", "a\\2a"])
def test_an_injected_login_matches_no_one_and_changes_nothing(slapd, login):
    add_people(slapd)
    slapd.add_group("readers", members=[f"uid=cat,{slapd.people}"])
    connector = ldap_connector(slapd)

    with pytest.raises(PermanentError) as error:
        connector.grant(
            PrincipalRef(email="x@corp.test", login=login), READERS, idempotency_key="k"
        )

    assert "no LDAP entry" in error.value.message
    assert members(slapd) == [f"uid=cat,{slapd.people}"]
    # revoking it removes nobody either (the literal value is not a member)
    result = connector.revoke(
        PrincipalRef(email="x@corp.test", login=login), READERS, idempotency_key="k"
    )
    assert result.changed is False
    assert members(slapd) == [f"uid=cat,{slapd.people}"]


@pytest.mark.parametrize("uid", ["*)(uid=*", "a,ou=admins", "x+cn=root", "back\\slash"])
def test_a_uid_full_of_special_characters_is_exactly_one_person(slapd, uid):
    add_people(slapd)  # ann, bob, ... must stay out of it
    dn = slapd.add_person(uid, mail="odd@corp.test")
    slapd.add_group("readers")
    connector = ldap_connector(slapd)
    odd = PrincipalRef(email="odd@corp.test", login=uid)

    assert connector.grant(odd, READERS, idempotency_key="k").changed is True

    held = members(slapd)
    assert len(held) == 1
    assert transport.norm_dn(held[0]) == transport.norm_dn(dn)
    assert transport.first_rdn(held[0]) == ("uid", uid)
    assert list(connector.iter_holders(READERS, page_size=2)) == [
        Holder(principal=uid.lower(), entitlement="readers", level="member")
    ]
    assert connector.login_for(odd) == uid.lower()
    assert connector.revoke(odd, READERS, idempotency_key="k").changed is True
    assert members(slapd) == []


@pytest.mark.parametrize("name", ["readers,ou=people", "readers+cn=x", "readers\\", "*"])
def test_a_group_name_cannot_move_the_group_dn(slapd, name):
    people = add_people(slapd)
    slapd.add_group("readers")
    connector = ldap_connector(slapd, groups={"evil": name})
    group = connector.group_for(EntitlementRef("directory", "evil"))

    parsed = parse_dn(group)
    assert len(parsed) == 1 + len(parse_dn(slapd.groups))  # one RDN below the groups base
    assert transport.first_rdn(group) == ("cn", name)
    with pytest.raises(PermanentError, match="does not exist"):
        connector.grant(people[0], EntitlementRef("directory", "evil"), idempotency_key="k")
    assert members(slapd) == []


def test_group_dns_outside_the_base_and_dn_logins_outside_people_are_refused(slapd):
    people = add_people(slapd)
    slapd.add_group("readers")
    with pytest.raises(ConfigError, match="not below base"):
        ldap_connector(slapd, groups={"x": f"cn=admins,ou=services,{slapd.suffix}"})
    connector = ldap_connector(slapd)
    outsider = PrincipalRef(email="svc@corp.test", login=slapd.service_dn)
    with pytest.raises(PermanentError, match="not below people_base"):
        connector.grant(outsider, READERS, idempotency_key="k")
    assert members(slapd) == []
    connector.grant(people[0], READERS, idempotency_key="k")
    assert members(slapd) == [f"uid=ann,{slapd.people}"]


# --- Unmanaged members and reconciliation's way back to them ---------------------------------


def test_an_unmanaged_member_dn_is_listed_and_can_be_revoked(slapd):
    people = add_people(slapd)
    intruder = f"cn=intruder,ou=services,{slapd.suffix}"
    slapd.add_group("readers", members=[intruder, f"uid=ann,{slapd.people}"])
    connector = ldap_connector(slapd)

    logins = [h.principal for h in connector.iter_holders(None, page_size=1)]
    assert logins == ["ann", transport.norm_dn(intruder)]
    principal = principal_for_login(connector, transport.norm_dn(intruder))
    assert principal is not None

    assert connector.revoke(principal, READERS, idempotency_key="k").changed is True
    assert members(slapd) == [f"uid=ann,{slapd.people}"]
    # the last member leaves an empty placeholder (groupOfNames requires a member)
    assert connector.revoke(people[0], READERS, idempotency_key="k").changed is True
    assert slapd.values(f"cn=readers,{slapd.groups}", "member") == [""]
    assert list(connector.iter_holders(READERS)) == []


def test_listing_every_group_below_the_base_pages_past_the_size_limit(slapd):
    add_people(slapd)
    for index in range(5):
        slapd.add_group(f"team-{index}", members=[f"uid=ann,{slapd.people}"])
    connector = ldap_connector(slapd, groups={}, search_page_size=2)

    # the service account may read at most 3 entries in a plain search ...
    password = slapd.service_password
    endpoint = connector.endpoint
    with transport.connect(
        endpoint, bind_dn=slapd.service_dn, password=password, action="t"
    ) as conn:
        conn.search(slapd.groups, "(objectClass=groupOfNames)", attributes=["1.1"])
        assert conn.result["description"] == "sizeLimitExceeded"
    # ... and the paged search reads all five groups
    holders = list(connector.iter_holders(None, page_size=2))
    assert sorted(h.entitlement for h in holders) == [f"team-{i}" for i in range(5)]
    assert {h.principal for h in holders} == {"ann"}


# --- Transport security, for real -------------------------------------------------------------


def test_starttls_ldaps_and_plain_are_what_they_say(slapd):
    kinds = {
        "starttls": ldap_connector(slapd),
        "ldaps": ldap_connector(slapd, url=slapd.ldaps_url, security="ldaps"),
        "plain": ldap_connector(slapd, security="plain"),
    }
    seen = {}
    for kind, connector in kinds.items():
        with transport.connect(
            connector.endpoint,
            bind_dn=slapd.service_dn,
            password=slapd.service_password,
            action="t",
        ) as conn:
            seen[kind] = (conn.tls_started, conn.server.ssl, conn.bound)
        assert connector.health().ok is True
    assert seen == {
        "starttls": (True, False, True),
        "ldaps": (False, True, True),
        "plain": (False, False, True),
    }


@pytest.mark.parametrize("kind", ["starttls", "ldaps"])
def test_an_untrusted_server_certificate_is_refused(slapd, kind):
    people = add_people(slapd)
    slapd.add_group("readers")
    url = slapd.ldaps_url if kind == "ldaps" else slapd.url
    connector = ldap_connector(slapd, url=url, security=kind, ca_file=None)  # system CAs only

    health = connector.health()
    assert health.ok is False
    assert "certificate" in health.detail
    with pytest.raises(PermanentError, match="certificate"):
        connector.grant(people[0], READERS, idempotency_key="k")
    assert members(slapd) == []


def test_security_settings_are_checked():
    base = {
        "password_env": PASSWORD_ENV,
        "bind_dn": "cn=svc,dc=t",
        "base": "ou=groups,dc=t",
        "people_base": "ou=people,dc=t",
    }
    assert LdapGroupConnector({**base, "url": "ldap://h"}).endpoint.security == "starttls"
    assert LdapGroupConnector({**base, "url": "ldaps://h"}).endpoint.port == 636
    plain = LdapGroupConnector({**base, "url": "ldap://h:3389", "security": "plain"})
    assert (plain.endpoint.security, plain.endpoint.port) == ("plain", 3389)
    for bad, message in [
        ({"url": "ldaps://h", "security": "plain"}, "does not match"),
        ({"url": "ldap://h", "security": "ldaps"}, "does not match"),
        ({"url": "ldap://h", "security": "none"}, "security must be"),
        ({"url": "http://h"}, "url must be"),
        ({"url": "ldap://h", "base": "not a dn"}, "not a valid distinguished name"),
        ({"url": "ldap://h", "user_attribute": "uid)(x"}, "attribute name"),
        ({"url": "ldap://h", "login_from": "name"}, "login_from"),
        ({"url": "ldap://h", "bind_dn": ""}, "bind_dn"),
    ]:
        with pytest.raises(ConfigError, match=message):
            LdapGroupConnector({**base, **bad})
    # secrets never in the stored config: the registry refuses them by key and by value
    with pytest.raises(ConfigError, match="looks like a secret"):
        check_config_secrets({**base, "url": "ldap://h", "password": "x"})
    with pytest.raises(ConfigError, match="embeds a credential"):
        check_config_secrets({**base, "url": "ldap://cn=svc:pw@h"})
    with pytest.raises(ConfigError, match="must start with TOLLGATE_"):
        get_connector("ldap", {**base, "url": "ldap://h", "password_env": "SECRET_KEY"})


def test_a_wrong_password_is_permanent_and_not_shown(slapd, monkeypatch):
    people = add_people(slapd)
    slapd.add_group("readers")
    monkeypatch.setenv(PASSWORD_ENV, "wrong-Pa55-zzz")
    connector = ldap_connector(slapd)

    with pytest.raises(PermanentError) as error:
        connector.grant(people[0], READERS, idempotency_key="k")
    assert "invalid credentials" in error.value.message
    assert "wrong-Pa55-zzz" not in error.value.message
    health = connector.health()
    assert health.ok is False and "wrong-Pa55-zzz" not in health.detail


def test_a_server_that_stops_is_transient(slapd):
    """A refused connection (nothing listens) is worth retrying; the transport says so."""
    people = add_people(slapd)
    config = ldap_config(slapd, url="ldap://127.0.0.1:9", timeout=2)
    with pytest.raises(TransientError, match="unreachable"):
        LdapGroupConnector(config).grant(people[0], READERS, idempotency_key="k")


def test_a_group_that_is_not_a_group_is_permanent(slapd):
    people = add_people(slapd)
    connector = ldap_connector(slapd, base=slapd.suffix, groups={"x": f"uid=bob,{slapd.people}"})
    with pytest.raises(PermanentError, match="not a groupOfNames or posixGroup"):
        connector.grant(people[0], EntitlementRef("directory", "x"), idempotency_key="k")
    assert slapd.values(f"uid=bob,{slapd.people}", "member") == []


def test_describe_lists_the_group_map(slapd):
    description = ldap_connector(slapd).describe()
    assert [(e.slug, e.config["group"]) for e in description.entitlements] == [
        ("readers", f"cn=readers,{slapd.groups}"),
        ("shell", f"cn=shell-users,{slapd.groups}"),
    ]
    assert ldap3.__version__
