"""Navigation entries of the reviews app (see portal.core.nav)."""

from __future__ import annotations

from typing import Any

from portal.core.nav import NavEntry, register

from .selectors import my_open_items


def reviews_waiting(user: Any) -> int:
    return my_open_items(viewer=user).count()


register(
    NavEntry(
        group="Governance",
        label="Reviews",
        url_name="reviews:mine",
        count=reviews_waiting,
        order=10,
        element_id="nav-reviews",
    )
)
