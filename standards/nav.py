"""Navigation entries of the standards app (see portal.core.nav)."""

from portal.core.nav import NavEntry, register

register(
    NavEntry(
        group="Governance",
        label="Standards",
        url_name="standards:violations",
        order=20,
        element_id="nav-standards",
    )
)
