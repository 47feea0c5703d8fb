from django.conf import settings
from django.shortcuts import redirect

from .policies import is_platform_admin

ADMIN_PREFIXES = ("/admin/", "/platform/")


def user_has_mfa(user) -> bool:
    from allauth.mfa.models import Authenticator

    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


class AdminMFAMiddleware:
    """Platform admins must enrol TOTP before they reach admin pages (REQUIRE_MFA_FOR_ADMINS)."""

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
            return redirect(f"/accounts/2fa/totp/activate/?next={request.path}")
        return self.get_response(request)
