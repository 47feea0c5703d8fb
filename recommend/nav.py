"""Navigation entries of the recommend app (see portal.core.nav)."""

from portal.core.nav import NavEntry, register

from .policies import may_see_model_status

register(
    NavEntry(
        group="Governance",
        label="Recommendations",
        url_name="recommend:status",
        visible=may_see_model_status,
        order=50,
        element_id="nav-recommendations",
    )
)
