"""Read-only admin views: every write goes through usage.services (audited)."""

from django.contrib import admin

from .models import (
    PrincipalAlias,
    UnusedRemoval,
    UsageCoverage,
    UsageImport,
    UsageMappingRule,
    UsageSource,
)


class ReadOnly(admin.ModelAdmin):
    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(UnusedRemoval)
class UnusedRemovalAdmin(ReadOnly):
    list_display = ("pk", "principal", "grant", "status", "remove_after", "opt_out_until")
    list_filter = ("status",)


@admin.register(UsageCoverage)
class UsageCoverageAdmin(ReadOnly):
    list_display = ("source", "service", "covered_since", "last_success_at", "last_error")


@admin.register(UsageImport)
class UsageImportAdmin(ReadOnly):
    list_display = ("source", "file_name", "events", "grants_used", "imported_at")


admin.site.register(UsageSource, ReadOnly)
admin.site.register(UsageMappingRule, ReadOnly)
admin.site.register(PrincipalAlias, ReadOnly)
