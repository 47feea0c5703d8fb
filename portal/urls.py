from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from portal.core import health

handler403 = "portal.core.views.error_403"
handler404 = "portal.core.views.error_404"
handler500 = "portal.core.views.error_500"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/v1/", include("access.api_urls")),  # early: the check API is the hot path
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("tokens/", include("tokens.urls")),
    path("api/v1/costs/", include("costs.api_urls")),
    path("api/v1/", include("costs.dashboard_api_urls")),
    path("", include("costs.dashboard_urls")),
    path("costs/", include("costs.urls")),
    path("", include("accounts.urls")),
    path("", include("access.urls")),
    path("provisioning/", include("access.sync.urls")),
    path("reviews/", include("reviews.urls")),
    path("standards/", include("standards.urls")),
    path("patterns/", include("patterns.urls")),
    path("unused-access/", include("usage.urls")),
    path("recommendations/", include("recommend.urls")),
    path("audit/", include("audit.urls")),
]

admin.site.site_header = "Tollgate administration"
admin.site.site_title = "Tollgate"
if settings.DEBUG:
    admin.site.site_header += f" ({settings.TOLLGATE_ENV})"
