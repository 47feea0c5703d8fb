"""Navigation entries of the audit app (see portal.core.nav)."""

from portal.core.nav import NavEntry, register

from .policies import may_read_audit

register(
    NavEntry(
        group="Governance",
        label="Audit",
        url_name="audit:search",
        visible=may_read_audit,
        order=90,
        element_id="nav-audit",
    )
)
