"""Navigation entries of the usage app (see portal.core.nav)."""

from portal.core.nav import NavEntry, register

register(
    NavEntry(
        group="Governance",
        label="Unused access",
        url_name="usage:list",
        order=40,
        element_id="nav-unused",
    )
)
