from django.contrib import admin

from .models import PolicyVersion, ScanRun, Standard, Violation


@admin.register(Standard)
class StandardAdmin(admin.ModelAdmin):
    list_display = ("key", "kind", "severity", "owner", "active", "version")
    list_filter = ("kind", "severity", "active")
    readonly_fields = [f.name for f in Standard._meta.fields]

    def has_add_permission(self, request):  # standards change only through a document version
        return False


@admin.register(PolicyVersion)
class PolicyVersionAdmin(admin.ModelAdmin):
    list_display = ("number", "author_label", "created_at")
    readonly_fields = [f.name for f in PolicyVersion._meta.fields]

    def has_add_permission(self, request):
        return False


admin.site.register(ScanRun)
admin.site.register(Violation)
