"""Connectors by name: ``settings.TOLLGATE_CONNECTORS`` maps a name to a dotted class path.

A service names its connector (``Service.connector``) and its non-secret settings
(``Service.connector_config``); :func:`get_connector` builds the connector from both.

Secrets policy: secrets live in the environment only. A config names the environment
variable that holds a secret (``{"dsn_env": "TOLLGATE_PG_TARGET_DSN"}``); the variable must
start with ``settings.TOLLGATE_CONNECTOR_ENV_PREFIX`` (``TOLLGATE_``) so a config cannot
point a connector at the portal's own secrets (``SECRET_KEY``, ``DATABASE_URL``). Config keys
that look like secrets (password, secret, token, dsn, api key, …) and values that embed
credentials (``scheme://user:password@host``, ``password=…``) are refused with a
:class:`~connectors.base.ConfigError` naming the offending key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from connectors.base import ConfigError, Connector

DEFAULT_ENV_PREFIX = "TOLLGATE_"

# A key that names an environment variable (``*_env``) is how secrets are referenced.
_ENV_KEY = re.compile(r"_env$", re.IGNORECASE)
_SECRET_KEY = re.compile(
    r"passw(or)?d|passphrase|(^|[_-])pass($|[_-])|secret|token|dsn|api[_-]?key|private[_-]?key"
    r"|credential|cookie|bearer|authorization|signing[_-]?key|conn(ection)?[_-]?str",
    re.IGNORECASE,
)
_ENV_VAR_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,127}$")
_URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/@\s:]*:[^/@\s]+@", re.IGNORECASE)
_KV_PASSWORD = re.compile(r"(^|\s)password\s*=", re.IGNORECASE)
_AUTH_VALUE = re.compile(r"^\s*(bearer|basic|token)\s+\S+", re.IGNORECASE)


def connector_names() -> list[str]:
    """Registered connector names, sorted (for the service form's choices)."""
    return sorted(_registry())


def _registry() -> Mapping[str, str]:
    return getattr(settings, "TOLLGATE_CONNECTORS", {}) or {}


def connector_class(name: str) -> type[Connector]:
    path = _registry().get(name)
    if not path:
        known = ", ".join(connector_names()) or "none"
        raise ConfigError(f"unknown connector {name!r} (registered: {known})")
    try:
        cls = import_string(path)
    except ImportError as exc:
        raise ConfigError(f"connector {name!r}: cannot import {path}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise ConfigError(f"connector {name!r}: {path} is not a Connector subclass")
    return cls


def check_config_secrets(config: Any, *, env_prefix: str | None = None) -> None:
    """Refuse secrets in a connector config; raise ConfigError naming the first bad key.

    ``*_env`` keys must hold an environment variable name with the allowed prefix; any other
    key that looks like a secret is refused, as is any string value that embeds credentials.
    """
    if env_prefix is None:
        env_prefix = getattr(settings, "TOLLGATE_CONNECTOR_ENV_PREFIX", DEFAULT_ENV_PREFIX)
    if not isinstance(config, Mapping):
        raise ConfigError("connector config must be a JSON object")
    _walk(config, "", env_prefix)


def _walk(value: Any, path: str, env_prefix: str) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError(
                    f"connector config: key {key!r} at {path or 'top level'} must be a string"
                )
            where = f"{path}.{key}" if path else key
            if _ENV_KEY.search(key):
                _check_env_reference(where, item, env_prefix)
                continue
            if _SECRET_KEY.search(key):
                raise ConfigError(
                    f"connector config key {where!r} looks like a secret: secrets are never stored "
                    f"in the database; put the secret in an environment variable and name it in "
                    f"{key}_env"
                )
            _walk(item, where, env_prefix)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _walk(item, f"{path}[{index}]", env_prefix)
    elif isinstance(value, str) and (
        _URL_WITH_PASSWORD.search(value) or _KV_PASSWORD.search(value) or _AUTH_VALUE.search(value)
    ):
        raise ConfigError(
            f"connector config value at {path!r} embeds a credential: secrets are never stored "
            "in the database; name an environment variable instead (e.g. dsn_env)"
        )


def _check_env_reference(where: str, value: Any, env_prefix: str) -> None:
    if not isinstance(value, str) or not _ENV_VAR_NAME.match(value):
        raise ConfigError(
            f"connector config key {where!r} must name an environment variable "
            "(upper case letters, digits and underscores)"
        )
    if env_prefix and not value.startswith(env_prefix):
        raise ConfigError(
            f"connector config key {where!r}: environment variable {value} must start with "
            f"{env_prefix} (connectors may not read the portal's own secrets)"
        )


def validate_config(name: str, config: Mapping[str, Any] | None) -> None:
    """Check a (name, config) pair without touching the network or reading secrets.

    Call it when a service's connector settings are saved; raises ConfigError.
    """
    get_connector(name, config)


def get_connector(name: str, config: Mapping[str, Any] | None = None) -> Connector:
    """Build the connector registered as ``name`` with ``config`` (a service's settings).

    Raises :class:`~connectors.base.ConfigError` for an unknown name, a secret-looking config
    or a config the connector itself refuses. Building reads no secret and opens no connection.
    """
    if config is None:
        config = {}
    check_config_secrets(config)
    config = dict(config)
    cls = connector_class(name)
    return cls(config)
