"""Navigation entries of the patterns app (see portal.core.nav)."""

from portal.core.nav import NavEntry, register

register(
    NavEntry(
        group="Governance",
        label="Patterns",
        url_name="patterns:index",
        order=30,
        element_id="nav-patterns",
    )
)
