"""Navigation entries of the tokens app (see portal.core.nav)."""

from portal.core.nav import NavEntry, register

register(NavEntry(group="Settings", label="API tokens", url_name="tokens:list", order=10))
