import pytest
from django.urls import reverse


@pytest.mark.sqlite
@pytest.mark.django_db
def test_anonymous_home_redirects_to_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


@pytest.mark.sqlite
@pytest.mark.django_db
def test_healthz_and_readyz_answer_json(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ok"})


@pytest.mark.sqlite
@pytest.mark.django_db
def test_signed_in_home_shows_team_and_manager(client, requester, manager):
    client.force_login(requester)
    response = client.get("/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Payments" in body
    assert manager.email in body
