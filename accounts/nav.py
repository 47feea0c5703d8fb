"""Navigation entries of the accounts app (see portal.core.nav)."""

from portal.core.nav import NavEntry, register

register(NavEntry(group="Access", label="Teams", url_name="team-list", order=10))
