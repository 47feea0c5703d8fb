"""Run by tests/core/test_optional_apps.py with ``--ds=tests.without_usage.settings``: every key
page works, and says nothing of unused access, when the ``usage`` app is not installed.
(Not named test_*.py: the main run, which has usage installed, does not collect it.)"""

from __future__ import annotations

import pytest
from django.apps import apps
from django.urls import NoReverseMatch, reverse

PAGES = [
    "/",
    "/teams/",
    "/catalog/",
    "/requests/new/",
    "/requests/",
    "/approvals/",
    "/grants/",
    "/provisioning/",
    "/reviews/",
    "/standards/violations/",
    "/patterns/",
    "/tokens/",
]
ADMIN_PAGES = ["/recommendations/", "/costs/overview/", "/costs/coverage/", "/audit/", "/admin/"]


def test_usage_is_not_installed():
    assert not apps.is_installed("usage")
    with pytest.raises(NoReverseMatch):
        reverse("usage:list")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("persona", "url", "status"),
    [("requester", url, 200) for url in PAGES]
    + [("requester", url, 404 if url != "/recommendations/" else 403) for url in ADMIN_PAGES[:3]]
    + [("admin", url, 200) for url in PAGES + ADMIN_PAGES],
)
def test_key_pages_render_without_the_usage_app(client, persona, url, status, request):
    user = request.getfixturevalue(persona)
    if url == "/admin/":
        user.is_staff = user.is_superuser = True
        user.save(update_fields=["is_staff", "is_superuser"])
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code)
    page = response.content.decode()
    assert 'id="nav-unused"' not in page
    assert "/unused-access/" not in page


@pytest.mark.django_db
def test_the_unused_access_pages_are_gone(client, admin):
    client.force_login(admin)
    assert client.get("/unused-access/").status_code == 404
