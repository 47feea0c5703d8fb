"""Connectors carry grants and revocations into downstream systems (A6).

A plain Python package, independent of Django models: the provisioning outbox turns a
Grant into a :class:`~connectors.base.PrincipalRef` and an
:class:`~connectors.base.EntitlementRef`, builds the service's connector with
:func:`~connectors.registry.get_connector` and calls it. See docs/CONNECTORS.md.
"""

from connectors.base import (
    ConfigError,
    Connector,
    ConnectorDescription,
    ConnectorError,
    EntitlementRef,
    EntitlementSpec,
    Health,
    Holder,
    NotSupported,
    Page,
    PermanentError,
    PrincipalRef,
    ResourceType,
    Result,
    TransientError,
)

__all__ = [
    "ConfigError",
    "Connector",
    "ConnectorDescription",
    "ConnectorError",
    "EntitlementRef",
    "EntitlementSpec",
    "Health",
    "Holder",
    "NotSupported",
    "Page",
    "PermanentError",
    "PrincipalRef",
    "ResourceType",
    "Result",
    "TransientError",
]
