from django.contrib import admin

from .models import BundleApplication, MiningRun, StandardBundle


class _ReadOnly(admin.ModelAdmin):
    """Writes go through patterns.services (audited); the admin only reads."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(MiningRun)
class MiningRunAdmin(_ReadOnly):
    list_display = ("pk", "scope", "team", "service", "status", "progress", "created_at")
    list_filter = ("status", "scope")


@admin.register(StandardBundle)
class StandardBundleAdmin(_ReadOnly):
    list_display = ("name", "team", "active", "updated_at")


@admin.register(BundleApplication)
class BundleApplicationAdmin(_ReadOnly):
    list_display = ("version", "user", "entitlement", "outcome", "created_at")
    list_filter = ("outcome",)
