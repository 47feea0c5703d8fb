"""Navigation entries of the reviews app (see portal.core.nav)."""

from portal.core.nav import NavEntry, register

register(NavEntry(group="Governance", label="Reviews", url_name="reviews:mine", order=10))
