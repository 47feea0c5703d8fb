from django.contrib import admin

from .models import Campaign, ReviewItem


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "scope", "reviewer_rule", "status", "starts_at", "deadline")
    list_filter = ("status", "scope", "reviewer_rule")
    readonly_fields = [f.name for f in Campaign._meta.fields]

    def has_add_permission(self, request):  # writes go through services (audited)
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ReviewItem)
class ReviewItemAdmin(admin.ModelAdmin):
    list_display = ("campaign", "principal", "entitlement", "status", "decided_at")
    list_filter = ("status",)
    readonly_fields = [f.name for f in ReviewItem._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
