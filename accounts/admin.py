from django.contrib import admin

from .models import Membership, Team, TeamMove, User


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = ("email", "name", "team", "manager", "status", "worker_type", "is_active")
    list_filter = ("status", "worker_type", "is_active")
    search_fields = ("email", "name")
    readonly_fields = ("password", "session_version", "last_login", "date_joined")

    def has_delete_permission(self, request, obj=None):
        return False  # people leave; they are never deleted


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "parent")
    search_fields = ("slug", "name")


admin.site.register(Membership)
admin.site.register(TeamMove)
