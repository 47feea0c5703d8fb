"""Transition tables of campaigns and review items (see portal/core/state.py)."""

from __future__ import annotations

CAMPAIGN_TRANSITIONS = {
    ("draft", "start"): "active",
    ("active", "close"): "closed",
}

ITEM_TRANSITIONS = {
    ("pending", "keep"): "kept",
    ("pending", "revoke"): "revoked",
    ("pending", "deadline_revoke"): "revoked",
    ("pending", "deadline_escalate"): "escalated",
}
