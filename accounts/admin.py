"""Django admin for people and teams: a reading tool, not a back door around the services.

People, teams, home teams, managers, leavers and team moves come from the HR directory
(``manage.py import_directory``, audited); the admin shows them read-only. The two changes
the portal has no other page for, platform roles and team roles (member/lead), are made here
but saved through ``user_set_roles`` and ``membership_set_role``: audited, with the role rules
(platform admins only, nobody changes their own roles). Nothing here saves a model directly,
and nothing is deleted.
"""

from __future__ import annotations

from allauth.account.admin import EmailAddressAdmin
from allauth.account.models import EmailAddress
from allauth.mfa.admin import AuthenticatorAdmin
from allauth.mfa.models import Authenticator
from allauth.socialaccount.admin import SocialAccountAdmin, SocialAppAdmin, SocialTokenAdmin
from allauth.socialaccount.models import SocialAccount, SocialApp, SocialToken
from django import forms
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin
from django.contrib.auth.models import Group

from .models import Membership, PlatformRole, Team, TeamMove, User
from .policies import may_change_roles
from .services import membership_set_role, user_set_roles

DIRECTORY_NOTE = (
    "From the HR directory: change it in the directory file and run "
    "`manage.py import_directory` (audited; leavers, team moves and managers included)."
)
ADMIN_REASON = "changed in the Django admin"


def _model_fields(model) -> list[str]:
    return [f.name for f in model._meta.get_fields() if f.concrete and not f.auto_created]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Shows the rows; adds, changes and deletes nothing."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class _ServiceForm(forms.ModelForm):
    """A form whose only writes are service calls; ``actor`` is the signed-in person."""

    actor = None

    def check_may_change_roles(self) -> None:
        if not may_change_roles(self.actor):
            raise forms.ValidationError("Only platform admins change roles.")


class _ThroughServicesAdmin(admin.ModelAdmin):
    """``save_model`` calls a service instead of saving; related rows are never saved."""

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"actor": request.user})

    def save_related(self, request, form, formsets, change):
        pass  # every editable field is saved by the service in save_model

    def has_delete_permission(self, request, obj=None):
        return False


# --- People -----------------------------------------------------------------------------


class UserRolesForm(_ServiceForm):
    roles = forms.MultipleChoiceField(
        label="Platform roles",
        choices=PlatformRole.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Saved through accounts.services.user_set_roles (audited): platform admins "
        "only, and nobody changes their own roles.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["roles"].initial = sorted(
                self.instance.groups.filter(name__in=PlatformRole.values).values_list(
                    "name", flat=True
                )
            )

    def clean(self):
        cleaned = super().clean()
        if "roles" in self.changed_data:
            self.check_may_change_roles()
            if self.actor is not None and self.actor.pk == self.instance.pk:
                raise forms.ValidationError("Nobody changes their own platform roles.")
        return cleaned


@admin.register(User)
class UserAdmin(_ThroughServicesAdmin):
    form = UserRolesForm
    list_display = ("email", "name", "team", "manager", "status", "worker_type", "is_active")
    list_filter = ("status", "worker_type", "is_active")
    search_fields = ("email", "name")
    fieldsets = (
        ("Platform roles", {"fields": ("roles",)}),
        (
            "Directory",
            {
                "fields": (
                    "email",
                    "name",
                    "status",
                    "worker_type",
                    "start_date",
                    "end_date",
                    "team",
                    "manager",
                    "is_active",
                ),
                "description": DIRECTORY_NOTE,
            },
        ),
        (
            "Sign-in",
            {
                "fields": (
                    "is_staff",
                    "is_superuser",
                    "groups",
                    "user_permissions",
                    "last_login",
                    "date_joined",
                    "session_version",
                ),
                "description": "Read-only. Platform roles are set above; staff and superuser "
                "accounts are made with `manage.py createsuperuser`.",
            },
        ),
    )
    readonly_fields = tuple(f for f in _model_fields(User) if f != "password")

    def has_add_permission(self, request):
        return False  # people come from the directory

    def save_model(self, request, obj, form, change):
        if change and "roles" in form.changed_data:
            user_set_roles(
                actor=request.user,
                user=obj,
                roles=list(form.cleaned_data["roles"]),
                reason=ADMIN_REASON,
            )


# --- Teams and memberships ----------------------------------------------------------------


@admin.register(Team)
class TeamAdmin(ReadOnlyAdmin):
    list_display = ("slug", "name", "parent")
    search_fields = ("slug", "name")
    fieldsets = (
        (None, {"fields": ("slug", "name", "parent", "created_at"), "description": DIRECTORY_NOTE}),
    )


class MembershipForm(_ServiceForm):
    class Meta:
        model = Membership
        fields = ("team", "user", "role")

    def clean(self):
        cleaned = super().clean()
        self.check_may_change_roles()
        return cleaned


@admin.register(Membership)
class MembershipAdmin(_ThroughServicesAdmin):
    """Team roles (member/lead) are set in Tollgate, not by HR: saved through
    ``membership_set_role``. Home-team memberships follow the directory import."""

    form = MembershipForm
    list_display = ("user", "team", "role", "since")
    list_filter = ("role",)
    search_fields = ("user__email", "team__slug")
    fieldsets = (
        (
            None,
            {
                "fields": ("team", "user", "role", "since"),
                "description": "Saved through accounts.services.membership_set_role "
                "(audited, platform admins only). Home teams and leavers follow the HR "
                "directory (`manage.py import_directory`); memberships are not deleted here.",
            },
        ),
    )

    def get_readonly_fields(self, request, obj=None):
        return ("since",) if obj is None else ("team", "user", "since")

    def save_model(self, request, obj, form, change):
        if change and "role" not in form.changed_data:
            return
        membership = membership_set_role(
            actor=request.user,
            team=obj.team,
            user=obj.user,
            role=form.cleaned_data["role"],
            reason=ADMIN_REASON,
        )
        obj.pk = membership.pk


@admin.register(TeamMove)
class TeamMoveAdmin(ReadOnlyAdmin):
    list_display = ("user", "from_team", "to_team", "occurred_at", "reviewed")
    list_filter = ("reviewed",)


# --- Django's auth groups -------------------------------------------------------------------
# Platform roles are auth groups: renaming or deleting one would change everyone's roles
# without an audit event, so the groups are read-only here too.

admin.site.unregister(Group)


@admin.register(Group)
class RoleGroupAdmin(ReadOnlyAdmin, GroupAdmin):
    pass


# --- Sign-in records of allauth -------------------------------------------------------------
# E-mail addresses, SSO links, provider apps, provider tokens and second factors decide who
# signs in as whom: read-only here (SSO links are made at sign-in, by
# accounts.adapters.SocialAccountAdapter; providers are configured in the settings).


def _read_only(model, admin_class) -> None:
    admin.site.unregister(model)
    admin.site.register(
        model,
        type(
            f"ReadOnly{admin_class.__name__}",
            (ReadOnlyAdmin, admin_class),
            {"__module__": __name__},
        ),
    )


_read_only(EmailAddress, EmailAddressAdmin)
_read_only(SocialAccount, SocialAccountAdmin)
_read_only(SocialApp, SocialAppAdmin)
_read_only(SocialToken, SocialTokenAdmin)
_read_only(Authenticator, AuthenticatorAdmin)
