"""Form errors are tied to their fields: a field with errors says aria-invalid="true" and its
aria-describedby names the element holding its errors; errors of the form as a whole are a
role="alert" region (portal.core.forms, portal.core.templatetags.form_a11y)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django import forms

from access.models import AccessRequest


class Page(HTMLParser):
    """Every element's attributes, and the text inside each element with an id."""

    def __init__(self, html: str):
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text_by_id: dict[str, str] = {}
        self._open: list[str | None] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = {k: v or "" for k, v in attrs}
        self.elements.append((tag, attributes))
        if tag in ("input", "br", "img", "meta", "link", "hr"):
            return
        element_id = attributes.get("id")
        if element_id:
            self.text_by_id.setdefault(element_id, "")
        self._open.append(element_id)

    def handle_endtag(self, tag):
        if self._open:
            self._open.pop()

    def handle_data(self, data):
        for element_id in self._open:
            if element_id:
                self.text_by_id[element_id] += data

    def field(self, tag: str, name: str) -> dict[str, str]:
        return next(a for t, a in self.elements if t == tag and a.get("name") == name)

    def described(self, attributes: dict[str, str]) -> str:
        """The text of every element the attributes' aria-describedby names (each must exist)."""
        ids = attributes.get("aria-describedby", "").split()
        assert ids, attributes
        missing = [i for i in ids if i not in self.text_by_id]
        assert not missing, f"aria-describedby names missing element(s) {missing}"
        return " ".join(" ".join(self.text_by_id[i].split()) for i in ids)

    def dangling_references(self) -> list[str]:
        return [
            ref
            for _, a in self.elements
            for ref in a.get("aria-describedby", "").split()
            if ref not in self.text_by_id
        ]


@pytest.mark.django_db
def test_the_request_form_ties_each_error_to_its_field(client, requester):
    client.force_login(requester)
    response = client.post("/requests/new/", {"duration_days": "0", "justification": ""})
    assert response.status_code == 200
    assert AccessRequest.objects.count() == 0
    page = Page(response.content.decode())

    justification = page.field("textarea", "justification")
    assert justification["aria-invalid"] == "true"
    assert page.described(justification) == "This field is required."

    duration = page.field("input", "duration_days")
    assert duration["aria-invalid"] == "true"
    assert page.described(duration) == "Ensure this value is greater than or equal to 1."

    picker = next(a for t, a in page.elements if t == "fieldset" and "aria-describedby" in a)
    assert page.described(picker) == "pick at least one entitlement"
    assert page.dangling_references() == []

    # A valid field is not marked.
    good = Page(
        client.post(
            "/requests/new/", {"duration_days": "7", "justification": "on call"}
        ).content.decode()
    )
    assert "aria-invalid" not in good.field("input", "duration_days")
    assert "aria-invalid" not in good.field("textarea", "justification")


@pytest.mark.django_db
def test_the_token_form_ties_its_errors_and_help_to_the_field(client, requester):
    client.force_login(requester)
    response = client.post("/tokens/new", {"name": "", "scopes": ["access:read"]})
    assert response.status_code == 400
    page = Page(response.content.decode())
    name = page.field("input", "name")
    assert name["aria-invalid"] == "true"
    described = page.described(name)
    assert "This field is required." in described
    assert page.dangling_references() == []


@pytest.mark.django_db
def test_the_sign_in_form_ties_field_errors_and_announces_form_errors(client, requester):
    empty = Page(client.post("/accounts/login/", {"login": "", "password": ""}).content.decode())
    login = empty.field("input", "login")
    assert login["aria-invalid"] == "true"
    assert empty.described(login) == "This field is required."
    assert empty.dangling_references() == []

    wrong = client.post(
        "/accounts/login/", {"login": "requester@example.com", "password": "not-it"}
    ).content.decode()
    page = Page(wrong)
    alerts = [a for t, a in page.elements if a.get("role") == "alert"]
    assert alerts, wrong
    assert "not correct" in wrong


def test_non_field_errors_render_as_an_alert_and_field_errors_carry_their_id():
    class Form(forms.Form):
        name = forms.CharField(help_text="what you call it")

        def clean(self):
            raise forms.ValidationError("the whole form is wrong")

    form = Form({"name": ""})
    assert not form.is_valid()
    html = str(form)
    assert (
        '<ul class="errorlist nonfield" role="alert"><li>the whole form is wrong</li></ul>' in html
    )
    assert 'id="id_name_error"' in html
    assert 'aria-invalid="true"' in html
    assert 'aria-describedby="id_name_helptext id_name_error"' in html
