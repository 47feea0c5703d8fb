"""Connector registry: names from settings, secrets refused in config."""

from __future__ import annotations

import pytest

from connectors.base import ConfigError
from connectors.fake import FakeConnector
from connectors.manual import ManualConnector
from connectors.postgres import PostgresRoleConnector
from connectors.registry import connector_names, get_connector, validate_config
from connectors.webhook import WebhookConnector


@pytest.mark.sqlite
def test_shipped_connectors_are_registered_by_name(settings):
    assert connector_names() == ["fake", "ldap", "manual", "postgres", "scim", "webhook"]
    pg = get_connector(
        "postgres", {"dsn_env": "TOLLGATE_PG_TARGET_DSN", "roles": {"read": "app_read"}}
    )
    assert isinstance(pg, PostgresRoleConnector)
    assert pg.config == {"dsn_env": "TOLLGATE_PG_TARGET_DSN", "roles": {"read": "app_read"}}
    hook = get_connector(
        "webhook", {"url": "https://svc.internal/hook", "secret_env": "TOLLGATE_SVC_SECRET"}
    )
    assert isinstance(hook, WebhookConnector)
    assert isinstance(get_connector("manual", {"group": "dba"}), ManualConnector)
    assert isinstance(get_connector("fake", {}), FakeConnector)


def test_building_a_connector_reads_no_secret(monkeypatch):
    monkeypatch.delenv("TOLLGATE_PG_TARGET_DSN", raising=False)
    conn = get_connector("postgres", {"dsn_env": "TOLLGATE_PG_TARGET_DSN"})
    assert conn.describe().name == "postgres"


@pytest.mark.sqlite
@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"password": "hunter2"}, "password"),
        ({"dsn": "postgres://db/x"}, "dsn"),
        ({"secret": "x"}, "secret"),
        ({"api_token": "x"}, "api_token"),
        ({"apiKey": "x"}, "apiKey"),
        ({"db_passwd": "x"}, "db_passwd"),
        ({"options": {"client_secret": "x"}}, "options.client_secret"),
        ({"headers": {"Authorization": "x"}}, "headers.Authorization"),
        ({"targets": [{"access_token": "x"}]}, "targets[0].access_token"),
    ],
)
def test_secret_looking_keys_are_refused(settings, config, key):
    with pytest.raises(ConfigError) as info:
        get_connector("fake", config)
    assert info.value.message.startswith(f"connector config key {key!r} looks like a secret")
    assert "environment variable" in info.value.message


@pytest.mark.parametrize(
    "config",
    [
        {"url": "postgres://app:hunter2@db.internal/x"},
        {"target": {"conninfo": "host=db password=hunter2"}},
        {"header": "Bearer abc.def"},
    ],
)
def test_values_embedding_credentials_are_refused(config):
    with pytest.raises(ConfigError, match="embeds a credential"):
        get_connector("fake", config)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("DATABASE_URL", "must start with TOLLGATE_"),
        ("SECRET_KEY", "must start with TOLLGATE_"),
        ("tollgate_lower", "must name an environment variable"),
        ("postgres://db/x", "must name an environment variable"),
        (42, "must name an environment variable"),
    ],
)
def test_env_references_must_be_prefixed_variable_names(value, message):
    with pytest.raises(ConfigError, match=message):
        get_connector("postgres", {"dsn_env": value})


def test_env_prefix_comes_from_settings(settings):
    settings.TOLLGATE_CONNECTOR_ENV_PREFIX = "TOLLGATE_CONN_"
    with pytest.raises(ConfigError, match="must start with TOLLGATE_CONN_"):
        get_connector("postgres", {"dsn_env": "TOLLGATE_PG_TARGET_DSN"})
    assert get_connector("postgres", {"dsn_env": "TOLLGATE_CONN_PG"}).config == {
        "dsn_env": "TOLLGATE_CONN_PG"
    }


@pytest.mark.sqlite
def test_unknown_and_broken_registrations_are_config_errors(settings):
    with pytest.raises(
        ConfigError,
        match=r"unknown connector 'nosuch' \(registered: fake, ldap, manual, postgres, scim, webhook\)",
    ):
        get_connector("nosuch", {})
    settings.TOLLGATE_CONNECTORS = {
        "odd": "connectors.base.Holder",
        "gone": "connectors.nope.Missing",
    }
    with pytest.raises(ConfigError, match="is not a Connector subclass"):
        get_connector("odd", {})
    with pytest.raises(ConfigError, match="cannot import connectors.nope.Missing"):
        get_connector("gone", {})


def test_validate_config_surfaces_the_connectors_own_checks():
    with pytest.raises(ConfigError, match="missing config key"):
        validate_config("webhook", {"secret_env": "TOLLGATE_X"})
    with pytest.raises(ConfigError, match="login_from must be one of"):
        validate_config("postgres", {"dsn_env": "TOLLGATE_X", "login_from": "nickname"})
    with pytest.raises(ConfigError, match="must be a JSON object"):
        validate_config("fake", ["not", "a", "dict"])  # type: ignore[arg-type]
    assert validate_config("manual", {"group": "dba"}) is None
