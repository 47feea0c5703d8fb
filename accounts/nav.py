"""Navigation entries of the accounts app (see portal.core.nav)."""

from portal.core.nav import NavEntry, register

register(
    NavEntry(group="Access", label="Teams", url_name="team-list", order=80),
    # Sign-in security (second factors) is allauth's page; the accounts app owns sign-in.
    NavEntry(
        group="Settings",
        label="Security",
        url_name="mfa_index",
        order=20,
        element_id="nav-security",
    ),
)
