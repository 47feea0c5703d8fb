from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings


class AccountAdapter(DefaultAccountAdapter):
    """People come from the HR directory; open sign-up is off unless configured."""

    def is_open_for_signup(self, request) -> bool:
        return settings.ACCOUNT_ALLOW_SIGNUP


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    """SSO may only sign in people the directory already knows (matched by e-mail)."""

    def is_open_for_signup(self, request, sociallogin) -> bool:
        return settings.ACCOUNT_ALLOW_SIGNUP

    def pre_social_login(self, request, sociallogin):
        if sociallogin.is_existing:
            return
        from .models import User

        email = (sociallogin.user.email or "").lower()
        user = User.objects.filter(email=email, is_active=True).first()
        if user is not None:
            sociallogin.connect(request, user)
