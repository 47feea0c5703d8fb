from allauth.account.decorators import secure_admin_login
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path

from portal.core import health, metrics
from portal.core.api import api_not_found

handler403 = "portal.core.views.error_403"
handler404 = "portal.core.views.error_404"
handler500 = "portal.core.views.error_500"


def mount(app: str, *mounts: tuple[str, str]) -> list[URLPattern | URLResolver]:
    """``(prefix, urls module)`` pairs of an app that may be left out of INSTALLED_APPS: mounted
    only when it is installed, so removing an app removes its pages (and its nav entries, see
    portal.core.nav) and nothing else."""
    if not apps.is_installed(app):
        return []
    return [path(prefix, include(module)) for prefix, module in mounts]


# The admin has no sign-in of its own: its login page sends to allauth's (rate limits, the MFA
# step, SSO), and a signed-in person who is not staff is refused rather than offered a password
# form that could turn them into a local superuser.
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("api/v1/", include("access.api_urls")),  # early: the check API is the hot path
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    *mount("tokens", ("tokens/", "tokens.urls")),
    *mount(
        "costs",
        ("api/v1/costs/", "costs.api_urls"),
        ("api/v1/", "costs.dashboard_api_urls"),
        ("", "costs.dashboard_urls"),
        ("costs/", "costs.urls"),
    ),
    *mount("oncall", ("api/v1/", "oncall.api_urls")),  # PUT /api/v1/oncall/{schedule}
    # After every API route: the rest of /api/ (unknown paths, malformed path ids) answers
    # 404 problem+json, not the HTML 404 page.
    re_path(r"^api/", api_not_found, name="api-not-found"),
    path("", include("accounts.urls")),
    path("", include("access.urls")),
    path("provisioning/", include("access.sync.urls")),
    *mount("reviews", ("reviews/", "reviews.urls")),
    *mount("standards", ("standards/", "standards.urls")),
    *mount("patterns", ("patterns/", "patterns.urls")),
    *mount("usage", ("unused-access/", "usage.urls")),
    *mount("recommend", ("recommendations/", "recommend.urls")),
    *mount("scim", ("scim/v2/", "scim.api_urls"), ("scim/", "scim.urls")),
    *mount("integrations", ("integrations/", "integrations.urls")),
    path("audit/", include("audit.urls")),
]

admin.site.site_header = "Tollgate administration"
admin.site.site_title = "Tollgate"
if settings.DEBUG:
    admin.site.site_header += f" ({settings.TOLLGATE_ENV})"
