"""In-memory connector for tests, with injectable transient and permanent failures.

State lives in a named, process-wide :class:`FakeBackend` so that every connector built for a
service (``get_connector("fake", {"namespace": "billing"})``, once per job attempt) sees the
same holders and the same failure budget::

    backend = FakeConnector.backend("billing")   # created on first use
    backend.inject(transient=2)                  # the next 2 grant/revoke calls fail transiently
    backend.inject(permanent=1)                  # then 1 fails permanently, then calls succeed
    ...
    assert backend.holds("ann@example.com", "read")
    assert backend.effects == 1                  # downstream changes actually made
    FakeConnector.reset_all()                    # between tests

Config keys: ``namespace`` (default ``"default"``), ``fail_transient`` / ``fail_permanent`` /
``fail_operations`` (the initial failure budget, applied only when the namespace's backend
is created, so rebuilding the connector per job attempt does not refill it; prefer
:meth:`FakeBackend.inject`), ``delay_ms`` (sleep in each call, for
concurrency tests). Holders are keyed by :meth:`Connector.login_for` (login, else e-mail).
Only for tests and the demo: the state is per process.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from connectors.base import (
    ConfigError,
    Connector,
    ConnectorDescription,
    EntitlementRef,
    Holder,
    Page,
    PermanentError,
    PrincipalRef,
    ResourceType,
    Result,
    TransientError,
)

OPERATIONS = ("grant", "revoke", "list_holders", "last_used")


@dataclass(frozen=True)
class FakeCall:
    operation: str
    principal: str | None
    entitlement: str | None
    idempotency_key: str | None
    outcome: str  # "changed", "noop", "transient", "permanent"


class FakeBackend:
    """The shared downstream state of one namespace. Thread-safe."""

    def __init__(self, name: str):
        self.name = name
        self._lock = threading.Lock()
        self.holders: dict[tuple[str, str], str] = {}
        self.calls: list[FakeCall] = []
        self.effects = 0
        self.transient_left = 0
        self.permanent_left = 0
        self.fail_operations: frozenset[str] = frozenset({"grant", "revoke"})
        self.retry_after: float | None = None
        self.last_used_at: dict[str, datetime] = {}

    def inject(
        self,
        *,
        transient: int = 0,
        permanent: int = 0,
        operations: Iterable[str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Fail the next ``transient`` matching calls transiently (asking to wait
        ``retry_after`` seconds, like an HTTP Retry-After), then ``permanent`` calls
        permanently; later calls succeed. ``operations`` defaults to grant and revoke."""
        if transient < 0 or permanent < 0:
            raise ValueError("failure counts must be >= 0")
        with self._lock:
            self.transient_left += transient
            self.permanent_left += permanent
            self.retry_after = retry_after
            if operations is not None:
                unknown = set(operations) - set(OPERATIONS)
                if unknown:
                    raise ValueError(f"unknown operations: {sorted(unknown)}")
                self.fail_operations = frozenset(operations)

    def reset(self) -> None:
        with self._lock:
            self.holders.clear()
            self.calls.clear()
            self.effects = 0
            self.transient_left = self.permanent_left = 0
            self.fail_operations = frozenset({"grant", "revoke"})
            self.retry_after = None
            self.last_used_at.clear()

    def holds(self, principal: str, entitlement: str) -> bool:
        with self._lock:
            return (principal, entitlement) in self.holders

    def set_holder(self, principal: str, entitlement: str, level: str = "member") -> None:
        """Seed downstream state directly (e.g. an unmanaged holder for reconciliation)."""
        with self._lock:
            self.holders[(principal, entitlement)] = level

    def set_last_used(self, principal: str, when: datetime) -> None:
        with self._lock:
            self.last_used_at[principal] = when

    def calls_for(self, operation: str) -> list[FakeCall]:
        with self._lock:
            return [call for call in self.calls if call.operation == operation]

    # Used by FakeConnector, under the lock ---------------------------------------------
    def _maybe_fail(self, operation: str, principal, entitlement, key) -> None:
        if operation not in self.fail_operations:
            return
        if self.transient_left > 0:
            self.transient_left -= 1
            self.calls.append(FakeCall(operation, principal, entitlement, key, "transient"))
            raise TransientError(
                f"fake {self.name}: injected transient failure of {operation}",
                retry_after=self.retry_after,
            )
        if self.permanent_left > 0:
            self.permanent_left -= 1
            self.calls.append(FakeCall(operation, principal, entitlement, key, "permanent"))
            raise PermanentError(f"fake {self.name}: injected permanent failure of {operation}")


class FakeConnector(Connector):
    name = "fake"
    supports_list_holders = True
    supports_last_used = True

    _backends: ClassVar[dict[str, FakeBackend]] = {}
    _backends_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, config=None, **overrides):
        super().__init__({**dict(config or {}), **overrides})
        namespace = self.config.get("namespace", "default")
        if not isinstance(namespace, str) or not namespace:
            raise ConfigError("fake connector: namespace must be a non-empty string")
        delay = self.config.get("delay_ms", 0)
        if not isinstance(delay, int) or delay < 0:
            raise ConfigError("fake connector: delay_ms must be a non-negative integer")
        self.delay_s = delay / 1000
        self.state, created = self._get_or_create_backend(namespace)
        transient = self.config.get("fail_transient", 0)
        permanent = self.config.get("fail_permanent", 0)
        if created and (transient or permanent or "fail_operations" in self.config):
            try:
                self.state.inject(
                    transient=int(transient),
                    permanent=int(permanent),
                    operations=self.config.get("fail_operations"),
                )
            except ValueError as exc:
                raise ConfigError(f"fake connector: {exc}") from exc

    @classmethod
    def backend(cls, namespace: str = "default") -> FakeBackend:
        """The shared state of ``namespace`` (created on first use)."""
        return cls._get_or_create_backend(namespace)[0]

    @classmethod
    def _get_or_create_backend(cls, namespace: str) -> tuple[FakeBackend, bool]:
        with cls._backends_lock:
            if namespace in cls._backends:
                return cls._backends[namespace], False
            backend = cls._backends[namespace] = FakeBackend(namespace)
            return backend, True

    @classmethod
    def reset_all(cls) -> None:
        with cls._backends_lock:
            cls._backends.clear()

    def describe(self) -> ConnectorDescription:
        return ConnectorDescription(
            name=self.name,
            resource_types=(ResourceType("fake", "in-memory entitlement for tests"),),
            supports_list_holders=True,
            supports_last_used=True,
            notes=f"in-memory namespace {self.state.name!r}",
        )

    def _pause(self) -> None:
        if self.delay_s:
            time.sleep(self.delay_s)

    def grant(
        self, principal: PrincipalRef, entitlement: EntitlementRef, *, idempotency_key: str
    ) -> Result:
        return self._change("grant", principal, entitlement, idempotency_key)

    def revoke(
        self, principal: PrincipalRef, entitlement: EntitlementRef, *, idempotency_key: str
    ) -> Result:
        return self._change("revoke", principal, entitlement, idempotency_key)

    def _change(
        self, operation: str, principal: PrincipalRef, entitlement: EntitlementRef, key: str
    ) -> Result:
        if not key:
            raise ValueError("idempotency_key is required")
        self._pause()
        login = self.login_for(principal)
        state = self.state
        with state._lock:
            state._maybe_fail(operation, login, entitlement.slug, key)
            item = (login, entitlement.slug)
            if operation == "grant":
                changed = item not in state.holders
                if changed:
                    state.holders[item] = str((entitlement.config or {}).get("level", "member"))
            else:
                changed = state.holders.pop(item, None) is not None
            if changed:
                state.effects += 1
            state.calls.append(
                FakeCall(operation, login, entitlement.slug, key, "changed" if changed else "noop")
            )
        return Result(changed=changed, detail=f"fake {operation} {entitlement.slug} for {login}")

    def list_holders(
        self,
        entitlement: EntitlementRef | None = None,
        *,
        cursor: str | None = None,
        page_size: int = 500,
    ) -> Page:
        page_size = self.check_page_size(page_size)
        self._pause()
        after = None
        if cursor is not None:
            try:
                after = tuple(json.loads(base64.urlsafe_b64decode(cursor.encode())))
            except (ValueError, TypeError) as exc:
                raise PermanentError(f"invalid holders cursor {cursor!r}") from exc
        state = self.state
        with state._lock:
            state._maybe_fail("list_holders", None, entitlement.slug if entitlement else None, None)
            state.calls.append(
                FakeCall(
                    "list_holders", None, entitlement.slug if entitlement else None, None, "noop"
                )
            )
            rows = sorted(
                (ent, login, level)
                for (login, ent), level in state.holders.items()
                if entitlement is None or ent == entitlement.slug
            )
        if after is not None:
            rows = [row for row in rows if (row[0], row[1]) > after]
        page, more = rows[:page_size], len(rows) > page_size
        next_cursor = (
            base64.urlsafe_b64encode(json.dumps([page[-1][0], page[-1][1]]).encode()).decode()
            if more
            else None
        )
        return Page(
            holders=tuple(Holder(login, ent, level) for ent, login, level in page),
            next_cursor=next_cursor,
        )

    def last_used(
        self, principal: PrincipalRef, entitlement: EntitlementRef | None = None
    ) -> datetime | None:
        login = self.login_for(principal)
        with self.state._lock:
            self.state._maybe_fail(
                "last_used", login, entitlement.slug if entitlement else None, None
            )
            return self.state.last_used_at.get(login)
