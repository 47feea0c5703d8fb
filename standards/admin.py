"""Read-only admin views: standards change only through a policy document version
(``manage.py standards_import``), violations and scans only through a scan (audited)."""

from django.contrib import admin

from .models import PolicyVersion, ScanRun, Standard, Violation


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Standard)
class StandardAdmin(ReadOnlyAdmin):
    list_display = ("key", "kind", "severity", "owner", "active", "version")
    list_filter = ("kind", "severity", "active")


@admin.register(PolicyVersion)
class PolicyVersionAdmin(ReadOnlyAdmin):
    list_display = ("number", "author_label", "created_at")


@admin.register(ScanRun)
class ScanRunAdmin(ReadOnlyAdmin):
    list_display = ("pk", "status", "actor_label", "violating", "opened", "resolved", "started_at")
    list_filter = ("status",)


@admin.register(Violation)
class ViolationAdmin(ReadOnlyAdmin):
    list_display = ("standard", "subject_label", "owner_team", "first_seen", "resolved_at")
    list_filter = ("standard", "subject_type")
    search_fields = ("subject_label", "subject_key")
