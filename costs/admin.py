"""Django admin: read-mostly views of cost data (edits go through the portal's services)."""

from django.contrib import admin

from .models import AttributionRule, BillingSource, ImportRun, ReattributionRun, RuleShare


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(BillingSource)
class BillingSourceAdmin(ReadOnlyAdmin):
    list_display = ("name", "description", "created_at")


@admin.register(ImportRun)
class ImportRunAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "source",
        "status",
        "file_name",
        "rows_loaded",
        "error_count",
        "created_at",
    )
    list_filter = ("status", "origin", "source")


class RuleShareInline(admin.TabularInline):
    model = RuleShare
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AttributionRule)
class AttributionRuleAdmin(ReadOnlyAdmin):
    list_display = ("position", "name", "method", "team", "enabled")
    inlines = [RuleShareInline]


@admin.register(ReattributionRun)
class ReattributionRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "status", "lines_changed", "created_at", "finished_at")
