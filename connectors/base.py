"""The connector interface: what every downstream connector declares and implements.

Connectors never import Django models. The caller (the provisioning outbox, later
reconciliation) passes small frozen value objects and gets value objects back:

* ``describe()`` -> :class:`ConnectorDescription` (resource types, entitlements, capabilities)
* ``grant(principal, entitlement, *, idempotency_key)`` -> :class:`Result`
* ``revoke(principal, entitlement, *, idempotency_key)`` -> :class:`Result`
* ``list_holders(entitlement=None, *, cursor=None, page_size=500)`` -> :class:`Page`
* ``last_used(principal, entitlement=None)`` -> ``datetime | None`` (optional)
* ``health()`` -> :class:`Health` (never raises; the catalog shows it)

``grant`` and ``revoke`` are *desired-state* calls: granting what is already held or
revoking what is not held succeeds with ``changed=False``. Calling them again with the
same idempotency key (a redelivered task) is always safe.

Failures are one of two exceptions, both carrying a human-readable ``message`` that is
safe to store and show (never a secret): :class:`TransientError` (retry with backoff) and
:class:`PermanentError` (terminal: mark the job failed, alert, a person must act).
"""

from __future__ import annotations

import base64
import copy
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

# --- Errors ---------------------------------------------------------------------------


class ConnectorError(Exception):
    """Base of every connector failure. ``message`` is safe to store and display."""

    transient: ClassVar[bool] = False

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class TransientError(ConnectorError):
    """Worth retrying later: the downstream system is unreachable, busy or timed out.

    ``retry_after`` (seconds) is how long the downstream system asked us to wait (an HTTP
    ``Retry-After``); the outbox retries no sooner than that.
    """

    transient = True

    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(ConnectorError):
    """Retrying will not help until a person changes something (config, permissions, data)."""


class ConfigError(PermanentError):
    """The connector's name or configuration is invalid (unknown name, secret in config, …)."""


class NotSupported(PermanentError):
    """The connector does not implement this optional operation."""


# --- Value objects --------------------------------------------------------------------


@dataclass(frozen=True)
class PrincipalRef:
    """Who: the portal user, by e-mail, plus an optional explicit downstream login."""

    email: str
    login: str = ""


@dataclass(frozen=True)
class EntitlementRef:
    """What: a service's entitlement by slugs, with its connector-specific settings.

    ``config`` holds non-secret, connector-specific settings of this entitlement (for the
    PostgreSQL connector ``{"role": "analytics_read"}``). It is excluded from hashing so the
    reference can be used in sets and as a dict key.
    """

    service_slug: str
    slug: str
    config: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Holder:
    """One (downstream identity, entitlement) membership as the downstream system sees it.

    ``principal`` is the downstream identity (a database login, an account name); map a
    :class:`PrincipalRef` to it with :meth:`Connector.login_for`. ``entitlement`` is the
    entitlement slug when the connector knows it, otherwise the downstream resource name.
    ``level`` is an optional access level (``"member"``, ``"admin"``, …).
    """

    principal: str
    entitlement: str
    level: str | None = None


@dataclass(frozen=True)
class Page:
    """One page of holders; ``next_cursor`` is ``None`` on the last page. Cursors are opaque."""

    holders: tuple[Holder, ...]
    next_cursor: str | None = None


DONE = "done"
PENDING_MANUAL = "pending_manual"


@dataclass(frozen=True)
class Result:
    """Outcome of a grant or revoke.

    ``status`` is :data:`DONE` (the downstream system is in the desired state) or
    :data:`PENDING_MANUAL` (a person must carry it out and confirm; see connectors.manual).
    ``changed`` says whether this call changed anything downstream (``False`` for a no-op
    repeat); ``detail`` is a short human-readable note for the job log.
    """

    changed: bool
    status: str = DONE
    detail: str = ""

    @property
    def done(self) -> bool:
        return self.status == DONE


@dataclass(frozen=True)
class Health:
    """Whether the downstream system answers with this connector's configuration.

    ``ok`` is False when a call would fail now; ``detail`` says why in words safe to show
    (never a secret), ``latency_ms`` how long the probe took.
    """

    ok: bool
    detail: str = ""
    latency_ms: float | None = None


@dataclass(frozen=True)
class ResourceType:
    name: str
    description: str = ""


@dataclass(frozen=True)
class EntitlementSpec:
    """An entitlement the connector knows about (from its configuration or discovery)."""

    slug: str
    resource_type: str
    name: str = ""
    config: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class ConnectorDescription:
    name: str
    resource_types: tuple[ResourceType, ...]
    entitlements: tuple[EntitlementSpec, ...] = ()
    supports_list_holders: bool = True
    supports_last_used: bool = False
    manual: bool = False
    notes: str = ""


# --- The interface --------------------------------------------------------------------


class Connector:
    """Base class. Subclasses set ``name`` and implement grant, revoke and list_holders.

    ``config`` is the service's ``connector_config``: non-secret settings only. Secrets are
    read from the environment at call time via :meth:`secret_from_env`, so describing or
    validating a connector never needs them.
    """

    name: ClassVar[str] = ""
    #: keys whose value names an environment variable holding a secret
    env_keys: ClassVar[tuple[str, ...]] = ()
    #: keys that must be present in ``config``
    required_keys: ClassVar[tuple[str, ...]] = ()
    supports_list_holders: ClassVar[bool] = True
    supports_last_used: ClassVar[bool] = False
    #: True when ``list_holders`` needs an entitlement (the downstream system has no
    #: "every holder" listing, e.g. SCIM groups named per entitlement): reconciliation then
    #: lists the holders of each of the service's entitlements in turn.
    lists_per_entitlement: ClassVar[bool] = False

    def __init__(self, config: Mapping[str, Any] | None = None):
        self.config: dict[str, Any] = copy.deepcopy(dict(config or {}))
        missing = [key for key in self.required_keys if not self.config.get(key)]
        if missing:
            raise ConfigError(
                f"{self.name or type(self).__name__} connector: missing config key(s): "
                + ", ".join(missing)
            )

    # Declaration -----------------------------------------------------------------------
    def describe(self) -> ConnectorDescription:
        raise NotImplementedError

    def login_for(self, principal: PrincipalRef) -> str:
        """The downstream identity of ``principal`` (what :class:`Holder.principal` holds)."""
        return principal.login or principal.email

    # Operations ------------------------------------------------------------------------
    def grant(
        self, principal: PrincipalRef, entitlement: EntitlementRef, *, idempotency_key: str
    ) -> Result:
        raise NotImplementedError

    def revoke(
        self, principal: PrincipalRef, entitlement: EntitlementRef, *, idempotency_key: str
    ) -> Result:
        raise NotImplementedError

    def list_holders(
        self,
        entitlement: EntitlementRef | None = None,
        *,
        cursor: str | None = None,
        page_size: int = 500,
    ) -> Page:
        raise NotSupported(f"{self.name} connector cannot list holders")

    def iter_holders(self, entitlement: EntitlementRef | None = None, *, page_size: int = 500):
        """Every holder, following cursors page by page (bounded memory)."""
        cursor = None
        while True:
            page = self.list_holders(entitlement, cursor=cursor, page_size=page_size)
            yield from page.holders
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def last_used(
        self, principal: PrincipalRef, entitlement: EntitlementRef | None = None
    ) -> datetime | None:
        """When ``principal`` last used the entitlement (or the system), if known."""
        raise NotSupported(f"{self.name} connector does not report last use")

    def health(self) -> Health:
        """Probe the downstream system (a cheap authenticated read). Never raises.

        Connectors override this; the default says the connector cannot tell.
        """
        return Health(ok=True, detail=f"{self.name} connector has no health probe")

    # Helpers ---------------------------------------------------------------------------
    def secret_from_env(self, key: str) -> str:
        """Read the secret whose environment variable name is ``config[key]``."""
        var = self.config.get(key)
        if not var:
            raise ConfigError(
                f"{self.name} connector: config key {key!r} must name an environment variable"
            )
        value = os.environ.get(var, "")
        if not value:
            raise ConfigError(
                f"{self.name} connector: environment variable {var} (from config {key!r}) is not set"
            )
        return value

    @staticmethod
    def check_page_size(page_size: int) -> int:
        if not isinstance(page_size, int) or isinstance(page_size, bool) or page_size < 1:
            raise ValueError("page_size must be a positive integer")
        return min(page_size, 10_000)


# --- Helpers the connectors share ------------------------------------------------------


def encode_pair_cursor(first: str, second: str) -> str:
    """An opaque keyset cursor of two strings (e.g. group and member): where the next page of
    :meth:`Connector.list_holders` starts."""
    return base64.urlsafe_b64encode(json.dumps([first, second]).encode()).decode()


def decode_pair_cursor(cursor: str | None) -> tuple[str, str] | None:
    """The two strings of :func:`encode_pair_cursor` (None for the first page); a cursor this
    code did not make is a :class:`PermanentError`."""
    if cursor is None:
        return None
    try:
        first, second = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError) as exc:
        raise PermanentError("invalid holders cursor") from exc
    if not isinstance(first, str) or not isinstance(second, str):
        raise PermanentError("invalid holders cursor")
    return first, second


def elapsed_ms(started: float) -> float:
    """Milliseconds since ``started`` (a ``time.perf_counter()`` reading), for :class:`Health`."""
    return round((time.perf_counter() - started) * 1000, 1)
