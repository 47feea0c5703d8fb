"""SCIM 2.0 client connector against a real SCIM server process (scim2-server's test server),
started on a free loopback port for this module and stopped in a finally. No mocked transport:
the one test of throttling puts a tiny loopback proxy in front of the real server."""

from __future__ import annotations

import uuid

import pytest

from connectors.base import (
    ConfigError,
    EntitlementRef,
    PermanentError,
    PrincipalRef,
    TransientError,
)
from connectors.registry import get_connector
from connectors.scim import ScimConnector, retry_after_seconds
from tests.connectors.contract import ConnectorContract
from tests.connectors.scim_server import (
    Throttle,
    free_port,
    running_scim_server,
    throttling_proxy,
)

TOKEN_ENV = "TOLLGATE_TEST_SCIM_TOKEN"


@pytest.fixture(scope="module")
def scim_server():
    with running_scim_server() as server:
        yield server


@pytest.fixture
def token_env(scim_server, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, scim_server.token)
    return TOKEN_ENV


@pytest.fixture
def run():
    """A label unique to the test: group and people names never meet another test's."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def group(scim_server, run):
    name = f"eng-{run}"
    scim_server.create_group(name)
    return name


def make(base_url: str, token_env: str = TOKEN_ENV, **config) -> ScimConnector:
    return ScimConnector({"base_url": base_url, "token_env": token_env, **config})


def person(run: str, name: str) -> PrincipalRef:
    return PrincipalRef(f"{name}.{run}@example.com")


class TestScimContract(ConnectorContract):
    @pytest.fixture
    def connector(self, scim_server, token_env):
        return make(scim_server.base_url)

    @pytest.fixture
    def entitlement(self, group):
        return EntitlementRef("app", "eng", {"group": group})

    @pytest.fixture
    def principals(self, run):
        return [person(run, name) for name in ("ann", "bob", "cat", "dan", "eve", "fay")]

    @pytest.fixture
    def page_size(self):
        return 2

    @pytest.fixture
    def unreachable_connector(self, token_env):
        return make(f"http://127.0.0.1:{free_port()}/v2", timeout=2, health_timeout=1)

    @pytest.fixture
    def permanent_failure(self, connector, run):
        missing = EntitlementRef("app", "ghost", {"group": f"no-such-group-{run}"})
        return lambda: connector.grant(
            PrincipalRef(f"ann.{run}@example.com"), missing, idempotency_key="k"
        )

    @pytest.fixture
    def secrets(self, scim_server):
        return [scim_server.token]


# --- Users: created once, matched by userName or externalId -------------------------------
def test_first_grant_creates_the_user_and_later_grants_reuse_it(scim_server, token_env, run):
    scim_server.create_group(f"a-{run}")
    scim_server.create_group(f"b-{run}")
    conn = make(scim_server.base_url)
    ann = person(run, "Ann")

    first = conn.grant(ann, EntitlementRef("app", "a", {"group": f"a-{run}"}), idempotency_key="1")
    second = conn.grant(ann, EntitlementRef("app", "b", {"group": f"b-{run}"}), idempotency_key="2")

    assert first.detail == f"added ann.{run}@example.com to SCIM group a-{run} (user created)"
    assert second.detail == f"added ann.{run}@example.com to SCIM group b-{run}"
    [user] = scim_server.users(f"ann.{run}@example.com")
    assert (user.external_id, user.active) == (f"ann.{run}@example.com", True)
    assert user.emails[0].value == f"ann.{run}@example.com"
    assert scim_server.member_user_names(f"a-{run}") == [f"ann.{run}@example.com"]
    assert scim_server.member_user_names(f"b-{run}") == [f"ann.{run}@example.com"]


def test_an_address_at_a_special_use_domain_still_gets_a_user(scim_server, token_env, group):
    """scim2-models refuses .test addresses as e-mail values: the user is made without
    ``emails`` (userName and externalId still carry the address), not refused."""
    zed = PrincipalRef("zed@corp.test")
    result = make(scim_server.base_url).grant(
        zed, EntitlementRef("app", "eng", {"group": group}), idempotency_key="k"
    )
    assert result.changed is True
    [user] = scim_server.users("zed@corp.test")
    assert (user.external_id, user.emails) == ("zed@corp.test", None)
    assert scim_server.member_user_names(group) == ["zed@corp.test"]


def test_an_existing_user_is_matched_by_external_id(scim_server, token_env, group, run):
    from scim2_models import User

    email = f"lee.{run}@example.com"
    with scim_server.client() as scim:
        existing = scim.create(User(user_name=f"lee-{run}", external_id=email, active=True))
    conn = make(scim_server.base_url)

    result = conn.grant(
        PrincipalRef(email), EntitlementRef("app", "eng", {"group": group}), idempotency_key="k"
    )

    assert result.changed is True
    assert "user created" not in result.detail
    assert scim_server.users(email) == []  # no second user under the e-mail address
    assert scim_server.member_user_names(group) == [f"lee-{run}"]
    assert existing.id


def test_a_creation_that_loses_a_race_uses_the_user_created_first(scim_server, token_env, run):
    """Two grants of one new person at once: the second POST /Users answers 409 (uniqueness)
    and the connector takes the existing user instead of failing or making a second one."""
    from scim2_models import User

    email = f"race.{run}@example.com"
    with scim_server.client() as scim:
        first = scim.create(User(user_name=email, external_id=email, active=True))
    conn = make(scim_server.base_url)

    with conn._session("grant") as scim:
        user, created = conn._create_user(scim, PrincipalRef(email))

    assert (user.id, created) == (first.id, False)
    assert len(scim_server.users(email)) == 1


def test_an_inactive_user_is_reactivated_by_a_grant(scim_server, token_env, group, run):
    from scim2_models import User

    email = f"max.{run}@example.com"
    with scim_server.client() as scim:
        scim.create(User(user_name=email, external_id=email, active=False))
    conn = make(scim_server.base_url)

    result = conn.grant(
        PrincipalRef(email), EntitlementRef("app", "eng", {"group": group}), idempotency_key="k"
    )

    assert result.detail == f"added {email} to SCIM group {group} (user reactivated)"
    [user] = scim_server.users(email)
    assert user.active is True


def test_revoke_deactivates_a_user_left_in_no_group_when_asked(scim_server, token_env, run):
    scim_server.create_group(f"a-{run}")
    scim_server.create_group(f"b-{run}")
    conn = make(scim_server.base_url, deactivate_when_unused=True)
    ann = person(run, "ann")
    a = EntitlementRef("app", "a", {"group": f"a-{run}"})
    b = EntitlementRef("app", "b", {"group": f"b-{run}"})
    conn.grant(ann, a, idempotency_key="1")
    conn.grant(ann, b, idempotency_key="2")

    first = conn.revoke(ann, a, idempotency_key="3")
    assert first.detail == f"removed ann.{run}@example.com from SCIM group a-{run}"
    assert scim_server.users(ann.email)[0].active is True  # still in b

    last = conn.revoke(ann, b, idempotency_key="4")
    assert last.detail.endswith("(user deactivated: in no group any more)")
    [user] = scim_server.users(ann.email)
    assert user.active is False  # deactivated, never deleted


def test_revoke_without_the_option_keeps_the_user_active(scim_server, token_env, group, run):
    conn = make(scim_server.base_url)
    ann = person(run, "ann")
    ent = EntitlementRef("app", "eng", {"group": group})
    conn.grant(ann, ent, idempotency_key="1")
    conn.revoke(ann, ent, idempotency_key="2")

    [user] = scim_server.users(ann.email)
    assert user.active is True
    assert scim_server.member_user_names(group) == []


def test_groups_map_and_list_holders_of_every_mapped_group(scim_server, token_env, run):
    scim_server.create_group(f"a-{run}")
    scim_server.create_group(f"b-{run}")
    conn = make(scim_server.base_url, groups={"a": f"a-{run}", "b": f"b-{run}"})
    people = [person(run, n) for n in ("ann", "bob", "cat")]
    for p in people:
        conn.grant(p, EntitlementRef("app", "a"), idempotency_key=f"a-{p.email}")
    conn.grant(people[0], EntitlementRef("app", "b"), idempotency_key="b")

    holders = list(conn.iter_holders(page_size=2))

    assert sorted((h.entitlement, h.principal) for h in holders) == sorted(
        [("a", p.email) for p in people] + [("b", people[0].email)]
    )
    assert [spec.slug for spec in conn.describe().entitlements] == ["a", "b"]


# --- Errors ----------------------------------------------------------------------------------
def test_throttled_answers_are_transient_and_carry_retry_after(scim_server, token_env, group, run):
    with throttling_proxy(scim_server, Throttle(failures=2, retry_after="7")) as proxy:
        conn = make(proxy.base_url)
        ann = person(run, "ann")
        ent = EntitlementRef("app", "eng", {"group": group})
        errors = []
        for attempt in range(2):
            with pytest.raises(TransientError) as error:
                conn.grant(ann, ent, idempotency_key=f"k{attempt}")
            errors.append(error.value)
        result = conn.grant(ann, ent, idempotency_key="k2")

    assert [e.retry_after for e in errors] == [7.0, 7.0]
    assert errors[0].message.startswith("SCIM grant at 127.0.0.1:")
    assert "answered HTTP 429: slow down; retry after 7s" in errors[0].message
    assert result.changed is True
    assert scim_server.member_user_names(group) == [ann.email]


def test_server_errors_are_transient_without_retry_after(scim_server, token_env, group):
    throttle = Throttle(failures=1, status=503, retry_after=None)
    with throttling_proxy(scim_server, throttle) as p, pytest.raises(TransientError) as error:
        make(p.base_url).grant(
            PrincipalRef("x@example.com"),
            EntitlementRef("app", "e", {"group": group}),
            idempotency_key="k",
        )
    assert error.value.retry_after is None
    assert "answered HTTP 503: slow down" in error.value.message


def test_a_refused_token_is_permanent_and_never_quoted(scim_server, group, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "wrong-token-value")
    conn = make(scim_server.base_url)

    with pytest.raises(PermanentError) as error:
        conn.grant(
            PrincipalRef("x@example.com"),
            EntitlementRef("app", "e", {"group": group}),
            idempotency_key="k",
        )

    assert "answered HTTP 401: Authorization failure" in error.value.message
    assert "wrong-token-value" not in error.value.message
    health = conn.health()
    assert health.ok is False and "HTTP 401" in health.detail
    assert "wrong-token-value" not in health.detail


def test_a_missing_group_is_permanent_and_named(scim_server, token_env, run):
    conn = make(scim_server.base_url)
    with pytest.raises(PermanentError) as error:
        conn.revoke(
            PrincipalRef("x@example.com"),
            EntitlementRef("app", "e", {"group": f"none-{run}"}),
            idempotency_key="k",
        )
    assert error.value.message == (
        f"SCIM group 'none-{run}' does not exist at 127.0.0.1:{scim_server.port}"
    )


def test_a_missing_token_variable_is_a_config_error(scim_server, group, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(ConfigError) as error:
        make(scim_server.base_url).grant(
            PrincipalRef("x@example.com"),
            EntitlementRef("app", "e", {"group": group}),
            idempotency_key="k",
        )
    assert error.value.message == (
        f"scim connector: environment variable {TOKEN_ENV} (from config 'token_env') is not set"
    )
    assert make(scim_server.base_url).health().ok is False


# --- Configuration ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"base_url": "ftp://x/v2"}, "scim connector: base_url must be an http(s) URL with a host"),
        (
            {"base_url": "https://u:p@x/v2"},
            "connector config value at 'base_url' embeds a credential",
        ),
        (
            {"groups": ["a"]},
            "scim connector: groups must map entitlement slugs to group display names",
        ),
        ({"user_name_from": "uid"}, "scim connector: user_name_from must be one of email, login"),
        (
            {"deactivate_when_unused": "yes"},
            "scim connector: deactivate_when_unused must be true or false",
        ),
        ({"timeout": 0}, "scim connector: timeout must be a positive number of seconds"),
        ({"token": "abc"}, "connector config key 'token' looks like a secret"),
        ({"token_env": "SECRET_KEY"}, "environment variable SECRET_KEY must start with TOLLGATE_"),
    ],
)
def test_bad_config_is_refused_by_the_registry(config, message):
    with pytest.raises(ConfigError) as error:
        get_connector(
            "scim", {"base_url": "https://app.example/scim/v2", "token_env": TOKEN_ENV, **config}
        )
    assert message in error.value.message


def test_registry_builds_the_scim_connector_without_network_or_secret():
    conn = get_connector(
        "scim", {"base_url": "https://app.example/scim/v2/", "token_env": TOKEN_ENV}
    )
    assert isinstance(conn, ScimConnector)
    assert conn.base_url == "https://app.example/scim/v2"
    assert (
        conn.describe().notes == "SCIM 2.0 at app.example; users matched by userName or externalId"
    )


def test_an_entitlement_without_a_group_is_a_config_error():
    conn = make("https://app.example/scim/v2")
    with pytest.raises(ConfigError) as error:
        conn.group_for(EntitlementRef("app", "eng"))
    assert "entitlement app/eng names no SCIM group" in error.value.message


def test_login_for_is_the_lower_case_address_or_the_explicit_login():
    conn = make("https://app.example/scim/v2")
    assert conn.login_for(PrincipalRef(" Ann.Lee@Example.COM ")) == "ann.lee@example.com"
    assert conn.login_for(PrincipalRef("a@example.com", login="legacy-ann")) == "legacy-ann"
    with pytest.raises(ConfigError):
        make("https://app.example/scim/v2", user_name_from="login").login_for(PrincipalRef("a@x"))


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        ("0", 0.0),
        ("-3", 0.0),
        ("99999", 3600.0),
        ("Thu, 01 Jan 1970 00:01:40 GMT", 40.0),
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after_header_parsing(header, seconds):
    assert retry_after_seconds(header, now=60.0) == seconds
