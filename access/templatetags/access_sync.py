"""``{% grant_sync_jobs grant %}``: a grant's provisioning jobs, for the grant page."""

from django import template

register = template.Library()


@register.inclusion_tag("access/partials/_sync_jobs.html")
def grant_sync_jobs(grant):
    from access.sync.selectors import jobs_for_grant

    return {"jobs": jobs_for_grant(grant=grant), "connector": grant.entitlement.service.connector}
