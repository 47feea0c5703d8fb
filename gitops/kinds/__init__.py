"""The object kinds of the configuration tree, in the order they are created and changed
(removals run in the reverse order)."""

from __future__ import annotations

from .base import Kind
from .bundles import BundleKind
from .catalog import EntitlementKind, PolicyKind, ServiceKind, ToxicPairKind
from .governance import AttributionRuleKind, BudgetKind, StandardKind
from .notifications import NotificationRouteKind
from .reviews import ReviewTemplateKind

KINDS: list[Kind] = [
    PolicyKind(),
    ServiceKind(),
    EntitlementKind(),
    ToxicPairKind(),
    BundleKind(),
    StandardKind(),
    BudgetKind(),
    AttributionRuleKind(),
    NotificationRouteKind(),
    ReviewTemplateKind(),
]

BY_NAME = {k.name: k for k in KINDS}
