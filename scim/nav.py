"""Navigation entry of the SCIM app (see portal.core.nav)."""

from portal.core.nav import NavEntry, register

from .policies import may_manage_scim

register(
    NavEntry(
        group="Settings",
        label="SCIM provisioning",
        url_name="scim:clients",
        order=20,
        visible=may_manage_scim,
    )
)
