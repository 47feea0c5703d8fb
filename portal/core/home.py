"""The home page's to-do list, which the apps contribute: ``accounts`` knows no other app.

Each app declares providers in a ``home.py`` module (``register(HomeProvider(...))``);
:func:`autodiscover` imports those of the installed apps (from ``CoreConfig.ready()``), like
the navigation (``portal.core.nav``). A provider is called with the viewer and returns
:class:`HomeItem` rows read through its app's selectors, so it is scoped like the app's own
pages: a person sees their own and their team's items, never anyone else's.

The page has fixed sections (:data:`SECTIONS`); a provider adds items to one of them. A
provider that fails on the database is left out (and logged) rather than breaking the page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError
from django.utils.module_loading import autodiscover_modules

logger = logging.getLogger(__name__)

#: (key, heading, what the section says when it is empty), in page order
SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("waiting", "Waiting on you", "Nothing waits on you."),
    ("requests", "Your open requests", "You have no open requests."),
    ("costs", "Your team's costs this month", "No cost data for your team yet."),
    ("suggestions", "Savings to act on", "No open savings suggestions for your team."),
)
SECTION_KEYS = tuple(key for key, _, _ in SECTIONS)


@dataclass(frozen=True)
class HomeItem:
    """One line of the to-do list: what, where it is done, and an optional call to action."""

    title: str
    url: str
    kind: str = ""  # a short tag: "Approval", "Review", "Expiring", …
    detail: str = ""
    badge: str = ""  # a short status ("stage 2 of 3: Security", "due in 3 days")
    action_label: str = ""  # e.g. "Extend": a link-button to ``action_url``
    action_url: str = ""
    #: a small table (header row first) that says in text what a chart would show
    table: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class HomeProvider:
    key: str
    section: str
    items: Callable[[Any], list[HomeItem]]
    order: int = 100
    #: where the full list is ("All approvals"), shown under the section when it has items
    more: Callable[[Any], tuple[str, str] | None] | None = None

    def __post_init__(self) -> None:
        if self.section not in SECTION_KEYS:
            raise ValueError(f"home section {self.section!r} is not one of {SECTION_KEYS}")


@dataclass
class HomeSection:
    key: str
    title: str
    empty: str
    items: list[HomeItem] = field(default_factory=list)
    more: list[tuple[str, str]] = field(default_factory=list)


_providers: dict[str, HomeProvider] = {}


def register(*providers: HomeProvider) -> None:
    """Add providers (keyed, so importing a home module twice adds nothing)."""
    for provider in providers:
        _providers[provider.key] = provider


def registered() -> list[HomeProvider]:
    return sorted(
        _providers.values(), key=lambda p: (SECTION_KEYS.index(p.section), p.order, p.key)
    )


def autodiscover() -> None:
    autodiscover_modules("home")


def todo_for(user: Any) -> list[HomeSection]:
    """Every section, in order, with the items the providers give ``user``."""
    sections = {
        key: HomeSection(key=key, title=title, empty=empty) for key, title, empty in SECTIONS
    }
    for provider in registered():
        section = sections[provider.section]
        try:
            items = provider.items(user)
            more = provider.more(user) if provider.more is not None else None
        except DatabaseError:
            logger.warning("home provider %s unavailable", provider.key, exc_info=True)
            continue
        section.items.extend(items)
        if more and items:
            section.more.append(more)
    return [sections[key] for key in SECTION_KEYS]
