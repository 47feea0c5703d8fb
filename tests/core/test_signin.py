"""Sign-in with allauth: local login, closed sign-up, audit of sign-ins, logout, MFA for admins."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import (
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
)
from django.contrib.sessions.models import Session
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from audit.models import AuditEvent
from audit.verify import verify_chain
from tests.conftest import PASSWORD, make_user

LOGIN_URL = "/accounts/login/"
HEADERS = {"X-Request-ID": "req-login-0001", "User-Agent": "pytest-browser/1.0"}


@pytest.fixture(autouse=True)
def _no_rate_limits(settings):
    # allauth's login_failed limit counts in the (shared Redis) cache across runs.
    settings.ACCOUNT_RATE_LIMITS = False


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


# --- local sign-in ----------------------------------------------------------------------


@pytest.mark.sqlite
@pytest.mark.django_db
def test_login_with_email_and_password_signs_in_and_is_audited(client, requester):
    response = client.post(
        LOGIN_URL,
        {"login": "Requester@Example.com", "password": PASSWORD},
        headers=HEADERS,
        REMOTE_ADDR="203.0.113.7",
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    assert int(client.session["_auth_user_id"]) == requester.pk
    assert client.get("/").status_code == 200
    (event,) = _events("auth.login")
    assert event.actor_id == requester.pk
    assert event.actor_label == "requester@example.com"
    assert (event.target_type, event.target_id) == ("accounts.user", str(requester.pk))
    assert event.request_id == "req-login-0001"
    assert event.ip == "203.0.113.7"
    assert event.user_agent == "pytest-browser/1.0"
    assert _events("auth.login_failed") == []
    assert verify_chain().ok


@pytest.mark.django_db
def test_failed_login_is_audited_and_signs_nobody_in(client, requester):
    response = client.post(
        LOGIN_URL,
        {"login": "requester@example.com", "password": "wrong-password"},
        headers=HEADERS,
        REMOTE_ADDR="198.51.100.9",
    )

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert _events("auth.login") == []
    (event,) = _events("auth.login_failed")
    assert event.actor_id is None
    assert event.actor_label == "anonymous"
    assert event.after == {"attempted": "requester@example.com"}
    assert event.request_id == "req-login-0001"
    assert event.ip == "198.51.100.9"
    assert "wrong-password" not in str(event.after) + event.reason
    assert client.get("/").status_code == 302


@pytest.mark.django_db
def test_leaver_cannot_sign_in(client, org):
    leaver = make_user("gone@example.com", team=org["payments"])
    User.objects.filter(pk=leaver.pk).update(is_active=False, status=User.Status.LEAVER)

    response = client.post(LOGIN_URL, {"login": "gone@example.com", "password": PASSWORD})

    assert "_auth_user_id" not in client.session
    assert response.status_code == 302
    assert response["Location"] == reverse("account_inactive")
    assert _events("auth.login") == []


@pytest.mark.django_db
def test_open_signup_is_closed(client, settings):
    assert settings.ACCOUNT_ALLOW_SIGNUP is False
    count = User.objects.count()

    page = client.get("/accounts/signup/")
    attempt = client.post(
        "/accounts/signup/",
        {
            "email": "newcomer@example.com",
            "password1": "a-very-long-passphrase-42",
            "password2": "a-very-long-passphrase-42",
        },
    )

    assert page.status_code == 200
    assert "account/signup_closed.html" in [t.name for t in page.templates]
    assert attempt.status_code == 200
    assert "account/signup_closed.html" in [t.name for t in attempt.templates]
    assert User.objects.count() == count
    assert not User.objects.filter(email="newcomer@example.com").exists()
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.count() == 0


# --- logout and sessions ----------------------------------------------------------------


@pytest.mark.django_db
def test_logout_is_post_only(client, requester):
    client.force_login(requester)

    confirm = client.get("/accounts/logout/")
    assert confirm.status_code == 200
    assert client.get("/").status_code == 200  # still signed in after GET
    assert _events("auth.logout") == []

    done = client.post("/accounts/logout/")
    assert done.status_code == 302
    assert done["Location"] == reverse("account_login")
    home = client.get("/")
    assert home.status_code == 302
    assert home["Location"].startswith(reverse("account_login"))
    (event,) = _events("auth.logout")
    assert event.actor_id == requester.pk


@pytest.mark.django_db
def test_sessions_expire(client, requester, settings):
    assert settings.SESSION_COOKIE_AGE == 12 * 3600
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE is True
    client.post(LOGIN_URL, {"login": "requester@example.com", "password": PASSWORD})
    session = Session.objects.get(session_key=client.session.session_key)
    expected = timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE)
    assert abs((session.expire_date - expected).total_seconds()) < 60
    assert client.get("/").status_code == 200

    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() - timedelta(seconds=1))

    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


# --- MFA for admins ---------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_without_totp_is_sent_to_totp_activation(client, admin, settings):
    settings.REQUIRE_MFA_FOR_ADMINS = True
    User.objects.filter(pk=admin.pk).update(is_staff=True)
    client.force_login(admin)

    response = client.get("/admin/")

    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_activate_totp") + "?next=%2Fadmin%2F"
    deep = client.get("/admin/accounts/user/?q=x")
    assert (
        deep["Location"]
        == reverse("mfa_activate_totp") + "?next=%2Fadmin%2Faccounts%2Fuser%2F%3Fq%3Dx"
    )


def _sign_in_with_totp(client, user, secret: str) -> None:
    """The real flow: password, then a code from the authenticator (allauth records "mfa")."""
    client.post(LOGIN_URL, {"login": user.email, "password": PASSWORD})
    code = format_hotp_value(hotp_value(secret, int(timezone.now().timestamp()) // 30))
    done = client.post(reverse("mfa_authenticate"), {"code": code})
    assert done.status_code == 302 and int(client.session["_auth_user_id"]) == user.pk


@pytest.mark.django_db
def test_enrolled_admin_with_a_password_only_session_is_sent_to_the_mfa_step(
    client, admin, settings
):
    settings.REQUIRE_MFA_FOR_ADMINS = True
    User.objects.filter(pk=admin.pk).update(is_staff=True)
    TOTP.activate(admin, generate_totp_secret())
    client.force_login(admin)  # enrolled, but no second factor in this session

    response = client.get("/admin/")

    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_reauthenticate") + "?next=%2Fadmin%2F"


@pytest.mark.django_db
def test_admin_who_passed_the_second_factor_is_let_through(client, admin, settings):
    settings.REQUIRE_MFA_FOR_ADMINS = True
    User.objects.filter(pk=admin.pk).update(is_staff=True)
    secret = generate_totp_secret()
    TOTP.activate(admin, secret)
    _sign_in_with_totp(client, admin, secret)

    response = client.get("/admin/")

    assert response.status_code == 200
    assert b"Tollgate administration" in response.content
    created = client.post("/tokens/service/new", {"service": "", "name": ""})
    assert not created.get("Location", "").startswith("/accounts/")


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["admin", "security"])
def test_a_password_only_session_of_a_powerful_person_reads_but_changes_nothing(
    client, persona, request, settings
):
    settings.REQUIRE_MFA_FOR_ADMINS = True
    person = request.getfixturevalue(persona)
    TOTP.activate(person, generate_totp_secret())
    client.force_login(person)
    before = AuditEvent.objects.count()

    assert client.get("/").status_code == 200
    page = client.post("/tokens/service/new", {"service": "", "name": "x"})
    assert page.status_code == 302
    assert page["Location"].startswith(reverse("mfa_reauthenticate"))
    export = client.get("/audit/export/")
    assert export["Location"].startswith(reverse("mfa_reauthenticate"))
    api = client.post("/api/v1/requests/", {}, content_type="application/json")
    assert api.status_code == 403
    assert api["Content-Type"] == "application/problem+json"
    assert api.json()["reason"] == "mfa_required"
    assert AuditEvent.objects.count() == before


@pytest.mark.django_db
def test_the_mfa_gate_leaves_engineers_alone(client, requester, settings):
    settings.REQUIRE_MFA_FOR_ADMINS = True
    client.force_login(requester)

    api = client.post("/api/v1/requests/", {}, content_type="application/json")

    assert api.status_code == 400  # the request is judged on its content, not sent to MFA


@pytest.mark.django_db
def test_recovery_codes_alone_do_not_count_as_totp(client, admin, settings):
    settings.REQUIRE_MFA_FOR_ADMINS = True
    User.objects.filter(pk=admin.pk).update(is_staff=True)
    Authenticator.objects.create(user=admin, type=Authenticator.Type.RECOVERY_CODES, data={})
    client.force_login(admin)

    assert client.get("/admin/")["Location"].startswith(reverse("mfa_activate_totp"))


@pytest.mark.django_db
def test_staff_without_platform_role_also_needs_totp(client, org, settings):
    settings.REQUIRE_MFA_FOR_ADMINS = True
    staff = make_user("staff@example.com", team=org["platform"], is_staff=True)
    client.force_login(staff)

    assert client.get("/admin/")["Location"].startswith(reverse("mfa_activate_totp"))


@pytest.mark.django_db
def test_non_admin_is_not_affected_by_admin_mfa(client, requester, settings):
    settings.REQUIRE_MFA_FOR_ADMINS = True
    client.force_login(requester)

    assert client.get("/").status_code == 200
    admin_page = client.get("/admin/")
    # Django admin itself turns a non-staff user away; the MFA gate does not intervene.
    assert admin_page.status_code == 302
    assert admin_page["Location"] == "/admin/login/?next=/admin/"


@pytest.mark.django_db
def test_admin_mfa_is_off_on_the_embedded_default(client, admin, settings):
    settings.REQUIRE_MFA_FOR_ADMINS = False
    User.objects.filter(pk=admin.pk).update(is_staff=True)
    client.force_login(admin)

    assert client.get("/admin/").status_code == 200


# --- the sign-in pages ------------------------------------------------------------------


def _no_inline_code(body: str) -> None:
    """The strict CSP forbids inline scripts and style attributes."""
    assert "<script>" not in body
    assert "<script " not in body.replace('<script src="/static/', "")
    assert 'style="' not in body


@pytest.mark.sqlite
@pytest.mark.django_db
def test_login_page_is_in_the_house_style(client):
    response = client.get(LOGIN_URL)

    assert response.status_code == 200
    names = [t.name for t in response.templates]
    assert "account/login.html" in names
    assert "base.html" in names
    body = response.content.decode()
    assert 'name="csrfmiddlewaretoken"' in body
    assert 'name="login"' in body and 'type="email"' in body
    assert 'name="password"' in body
    assert "/accounts/signup/" not in body  # no invitation to an open sign-up
    _no_inline_code(body)


@pytest.mark.django_db
def test_totp_activation_asks_for_the_password_again_then_renders(client, admin):
    client.force_login(admin)  # a session without a recent password sign-in
    redirect = client.get(reverse("mfa_activate_totp"))
    assert redirect.status_code == 302
    assert redirect["Location"].startswith(reverse("account_reauthenticate"))
    confirm = client.get(redirect["Location"])
    assert "account/reauthenticate.html" in [t.name for t in confirm.templates]
    _no_inline_code(confirm.content.decode())

    confirmed = client.post(redirect["Location"], {"password": PASSWORD})
    assert confirmed.status_code == 302
    assert confirmed["Location"] == reverse("mfa_activate_totp")
    response = client.get(reverse("mfa_activate_totp"))

    assert response.status_code == 200
    assert "mfa/totp/activate_form.html" in [t.name for t in response.templates]
    body = response.content.decode()
    assert 'src="data:image/svg+xml' in body
    assert 'name="code"' in body
    _no_inline_code(body)


@pytest.mark.django_db
def test_admin_with_totp_must_enter_a_code_to_sign_in(client, admin):
    secret = generate_totp_secret()
    TOTP.activate(admin, secret)

    first = client.post(LOGIN_URL, {"login": "admin@example.com", "password": PASSWORD})

    assert first.status_code == 302
    assert first["Location"] == reverse("mfa_authenticate")
    assert "_auth_user_id" not in client.session  # the password alone does not sign in
    page = client.get(reverse("mfa_authenticate"))
    assert "mfa/authenticate.html" in [t.name for t in page.templates]
    _no_inline_code(page.content.decode())

    wrong = client.post(reverse("mfa_authenticate"), {"code": "000000"})
    assert wrong.status_code == 200
    assert "_auth_user_id" not in client.session

    counter = int(timezone.now().timestamp()) // 30
    code = format_hotp_value(hotp_value(secret, counter))
    done = client.post(reverse("mfa_authenticate"), {"code": code})

    assert done.status_code == 302
    assert int(client.session["_auth_user_id"]) == admin.pk
    assert [e.actor_id for e in _events("auth.login")] == [admin.pk]


# --- the admin site has no password form of its own ---------------------------------------


@pytest.mark.django_db
def test_admin_login_sends_to_the_allauth_sign_in(client):
    response = client.get("/admin/login/?next=/admin/")

    assert response.status_code == 302
    target = urlsplit(response["Location"])
    assert target.path == reverse("account_login")
    assert parse_qs(target.query)["next"][0].startswith("/admin/")


@pytest.mark.django_db
def test_a_staff_password_posted_to_the_admin_login_signs_nobody_in(client, admin):
    User.objects.filter(pk=admin.pk).update(is_staff=True, is_superuser=True)

    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": admin.email, "password": PASSWORD, "next": "/admin/"},
    )

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302


@pytest.mark.django_db
def test_a_signed_in_non_staff_person_is_refused_at_the_admin_login(client, requester):
    client.force_login(requester)

    assert client.get("/admin/login/").status_code == 403


# --- SSO links an existing account only on a verified e-mail ----------------------------------

SSO_PROVIDERS = {
    "openid_connect": {
        "APPS": [
            {
                "provider_id": "sso",
                "name": "Company SSO",
                "client_id": "tollgate",
                "secret": "not-a-secret",
                "settings": {"server_url": "https://idp.example.com"},
            }
        ]
    }
}


@pytest.fixture
def sso(settings):
    settings.SOCIALACCOUNT_PROVIDERS = SSO_PROVIDERS
    return settings


def _sso_sign_in(claims: dict):
    """Complete an OpenID Connect sign-in with ``claims`` as the provider's answer, the way
    allauth's callback view does; returns (response, request)."""
    from allauth.core import context
    from allauth.socialaccount.adapter import get_adapter as get_social_adapter
    from allauth.socialaccount.internal.flows.login import complete_login
    from django.contrib.auth.models import AnonymousUser
    from django.contrib.messages.middleware import MessageMiddleware
    from django.contrib.sessions.middleware import SessionMiddleware
    from django.test import RequestFactory

    request = RequestFactory().get("/accounts/oidc/sso/login/callback/")
    SessionMiddleware(lambda r: None).process_request(request)
    MessageMiddleware(lambda r: None).process_request(request)
    request.user = AnonymousUser()
    with context.request_context(request):
        provider = get_social_adapter(request).get_provider(request, "sso")
        sociallogin = provider.sociallogin_from_response(request, {"sub": "idp-42", **claims})
        response = complete_login(request, sociallogin)
    return response, request


def _messages(request) -> list[str]:
    from django.contrib.messages import get_messages

    return [str(m) for m in get_messages(request)]


@pytest.mark.django_db
@pytest.mark.parametrize("verified", [False, None], ids=["email_verified-false", "no-claim"])
def test_sso_with_an_unverified_email_of_an_existing_person_is_refused(sso, requester, verified):
    from allauth.socialaccount.models import SocialAccount

    claims = {"email": requester.email}
    if verified is not None:
        claims["email_verified"] = verified

    response, request = _sso_sign_in(claims)

    assert response.status_code == 302
    assert response["Location"] == reverse("account_login")
    assert not SocialAccount.objects.exists()
    assert "_auth_user_id" not in request.session
    assert not request.user.is_authenticated
    assert _messages(request) == [
        f"We could not sign you in with Company SSO: it did not confirm that {requester.email} "
        "is your verified e-mail address. Ask IT to verify the address at the identity "
        "provider, or sign in with your password."
    ]
    assert _events("auth.login") == []
    failed = _events("auth.login_failed")
    assert len(failed) == 1
    assert failed[0].after == {"attempted": requester.email}
    requester.refresh_from_db()
    assert requester.check_password(PASSWORD)  # the person's own password is untouched


@pytest.mark.django_db
def test_sso_with_a_verified_email_links_the_existing_person_and_signs_in(sso, requester):
    from allauth.socialaccount.models import SocialAccount

    response, request = _sso_sign_in({"email": requester.email, "email_verified": True})

    assert response.status_code == 302
    account = SocialAccount.objects.get()
    assert (account.provider, account.uid, account.user_id) == ("sso", "idp-42", requester.pk)
    assert request.session["_auth_user_id"] == str(requester.pk)
    assert [e.actor_label for e in _events("auth.login")] == [requester.email]
    assert _events("auth.login_failed") == []


@pytest.mark.django_db
def test_sso_from_a_trusted_provider_links_without_the_verified_claim(sso, requester):
    from allauth.socialaccount.models import SocialAccount

    sso.TOLLGATE_SSO_TRUSTED_PROVIDERS = ["sso"]

    response, request = _sso_sign_in({"email": requester.email})

    assert response.status_code == 302
    assert SocialAccount.objects.get().user_id == requester.pk
    assert request.session["_auth_user_id"] == str(requester.pk)


@pytest.mark.django_db
def test_sso_from_a_provider_app_marked_verified_email_links(sso, requester):
    from allauth.socialaccount.models import SocialAccount

    providers = {"openid_connect": {"APPS": [dict(SSO_PROVIDERS["openid_connect"]["APPS"][0])]}}
    app = providers["openid_connect"]["APPS"][0]
    app["settings"] = {**app["settings"], "verified_email": True}
    sso.SOCIALACCOUNT_PROVIDERS = providers

    response, request = _sso_sign_in({"email": requester.email, "email_verified": False})

    assert response.status_code == 302
    assert SocialAccount.objects.get().user_id == requester.pk
    assert request.session["_auth_user_id"] == str(requester.pk)


@pytest.mark.django_db
def test_another_trusted_provider_does_not_vouch_for_this_one(sso, requester):
    from allauth.socialaccount.models import SocialAccount

    sso.TOLLGATE_SSO_TRUSTED_PROVIDERS = ["saml"]

    response, request = _sso_sign_in({"email": requester.email, "email_verified": False})

    assert response["Location"] == reverse("account_login")
    assert not SocialAccount.objects.exists()
    assert "_auth_user_id" not in request.session
