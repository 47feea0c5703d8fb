from allauth.account.adapter import DefaultAccountAdapter
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.signals import user_login_failed
from django.shortcuts import redirect

#: Providers (their ids, as in SOCIALACCOUNT_PROVIDERS' ``provider_id``) whose every e-mail
#: address is taken as verified, for an identity provider that only knows company addresses
#: but does not send ``email_verified``. Prefer the provider app's ``"verified_email": True``.
TRUSTED_PROVIDERS_SETTING = "TOLLGATE_SSO_TRUSTED_PROVIDERS"

UNVERIFIED_EMAIL_MESSAGE = (
    "We could not sign you in with {provider}: it did not confirm that {email} is your "
    "verified e-mail address. Ask IT to verify the address at the identity provider, or "
    "sign in with your password."
)


class AccountAdapter(DefaultAccountAdapter):
    """People come from the HR directory; open sign-up is off unless configured."""

    def is_open_for_signup(self, request) -> bool:
        return settings.ACCOUNT_ALLOW_SIGNUP


def _provider_ids(sociallogin) -> set[str]:
    ids = {sociallogin.account.provider}
    provider = getattr(sociallogin, "provider", None)
    if provider is not None:
        ids.update({provider.id, getattr(provider, "sub_id", provider.id)})
    return ids


def email_is_verified(sociallogin, email: str) -> bool:
    """Whether the provider asserted ``email`` as verified (allauth already counts the
    provider's ``verified_email``/``VERIFIED_EMAIL`` settings), or the provider is trusted."""
    trusted = set(getattr(settings, TRUSTED_PROVIDERS_SETTING, ()))
    if trusted & _provider_ids(sociallogin):
        return True
    return any(
        address.verified and (address.email or "").lower() == email
        for address in sociallogin.email_addresses
    )


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    """SSO may only sign in people the directory already knows (matched by e-mail), and links
    an SSO identity to a person only when the provider vouches for the e-mail address: an
    unverified address could be anyone's."""

    def is_open_for_signup(self, request, sociallogin) -> bool:
        return settings.ACCOUNT_ALLOW_SIGNUP

    def pre_social_login(self, request, sociallogin):
        if sociallogin.is_existing:
            return
        from .models import User

        email = (sociallogin.user.email or "").lower()
        if not email:
            return
        user = User.objects.filter(email=email, is_active=True).first()
        if user is None:
            return
        if not email_is_verified(sociallogin, email):
            user_login_failed.send(sender=__name__, credentials={"email": email}, request=request)
            provider = getattr(sociallogin, "provider", None)
            messages.error(
                request,
                UNVERIFIED_EMAIL_MESSAGE.format(
                    provider=getattr(provider, "name", None) or "single sign-on", email=email
                ),
            )
            raise ImmediateHttpResponse(redirect("account_login"))
        sociallogin.connect(request, user)
