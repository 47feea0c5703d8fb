from urllib.parse import urlencode

from django.conf import settings
from django.shortcuts import redirect
from django.urls import reverse

from .policies import is_platform_admin

ADMIN_PREFIXES = ("/admin/", "/platform/")


def user_has_mfa(user) -> bool:
    from allauth.mfa.models import Authenticator

    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


class AdminMFAMiddleware:
    """Platform admins must enrol TOTP before they reach admin pages (REQUIRE_MFA_FOR_ADMINS).

    Staff accounts (Django admin access) count as admins here too. Once TOTP is enrolled,
    allauth's sign-in flow asks for a code after the password.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (
            settings.REQUIRE_MFA_FOR_ADMINS
            and request.path.startswith(ADMIN_PREFIXES)
            and request.user.is_authenticated
            and (is_platform_admin(request.user) or request.user.is_staff)
            and not user_has_mfa(request.user)
        ):
            query = urlencode({"next": request.get_full_path()})
            return redirect(f"{reverse('mfa_activate_totp')}?{query}")
        return self.get_response(request)
