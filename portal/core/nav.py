"""Navigation that the apps contribute: ``base.html`` knows no app's URLs.

Each app declares its entries in a ``nav.py`` module (``register(NavEntry(...))``);
:func:`autodiscover` imports those of the installed apps (from ``CoreConfig.ready()``), so an
app taken out of ``INSTALLED_APPS`` takes its links with it. ``visible`` only hides a link:
the views check their policies themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError
from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import autodiscover_modules

logger = logging.getLogger(__name__)

#: the groups, in the order the header shows them
GROUPS = ("Access", "Costs", "Governance", "Settings")


def signed_in(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False))


@dataclass(frozen=True)
class NavEntry:
    group: str
    label: str
    url_name: str
    visible: Callable[[Any], bool] = signed_in
    count: Callable[[Any], int | None] | None = None
    order: int = 100
    element_id: str = ""
    #: the link for this viewer when it is not ``reverse(url_name)`` (e.g. the viewer's own
    #: team page); ``None`` from it hides the entry. ``url_name`` still keys the entry.
    url: Callable[[Any], str | None] | None = None

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"nav group {self.group!r} is not one of {GROUPS}")


@dataclass(frozen=True)
class NavLink:
    label: str
    url: str
    element_id: str = ""
    count: int | None = None


@dataclass(frozen=True)
class NavGroup:
    label: str
    links: list[NavLink] = field(default_factory=list)

    @property
    def count(self) -> int:
        """What waits on the viewer in this group (shown on the closed menu)."""
        return sum(link.count or 0 for link in self.links)

    @property
    def slug(self) -> str:
        return self.label.lower()


_entries: dict[str, NavEntry] = {}


def register(*entries: NavEntry) -> None:
    """Add entries (keyed by URL name, so importing a nav module twice adds nothing)."""
    for entry in entries:
        _entries[entry.url_name] = entry


def registered() -> list[NavEntry]:
    return sorted(_entries.values(), key=lambda e: (GROUPS.index(e.group), e.order, e.label))


def autodiscover() -> None:
    autodiscover_modules("nav")


def nav_for(user: Any) -> list[NavGroup]:
    """The groups and links ``user`` may use, in order; empty groups are left out.

    ``base.html`` also frames the error pages: an entry whose check or count fails on the
    database is skipped (or shown without its count) rather than breaking the page.
    """
    groups: dict[str, list[NavLink]] = {}
    for entry in registered():
        try:
            if not entry.visible(user):
                continue
            url = entry.url(user) if entry.url is not None else reverse(entry.url_name)
        except DatabaseError:
            logger.warning("nav entry %s unavailable", entry.url_name, exc_info=True)
            continue
        except NoReverseMatch:  # the app is installed but its URLs are not mounted
            continue
        if url is None:
            continue
        count = None
        if entry.count is not None:
            try:
                count = entry.count(user)
            except DatabaseError:
                logger.warning("nav count %s unavailable", entry.url_name, exc_info=True)
        groups.setdefault(entry.group, []).append(
            NavLink(label=entry.label, url=url, element_id=entry.element_id, count=count)
        )
    return [NavGroup(label=g, links=groups[g]) for g in GROUPS if g in groups]
